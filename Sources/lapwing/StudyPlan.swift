import Foundation
import LapwingCore
import LapwingEngine
import LapwingJob
import LapwingOptions

/// The jobs of a study: each chosen algorithm, for each value of the swept knob, with the
/// options of `run` they all share (same data, model, seed and budget).
struct StudyPlan {
    struct Job {
        /// Its folder under the study's `jobs/` ("03-local-sgd-period-4").
        var folder: String
        /// Its name in the table, the plots and the progress ("local-sgd period=4").
        var label: String
        var algorithm: String
        /// The swept run option as `name=value`, when the sweep is of one (`batch=64`).
        var sweptOption: String?
        var options: TrainingOptions
        var config: AlgorithmConfig
        var compression: AlgorithmConfig?
    }

    /// The most jobs one study runs.
    static let maxJobs = 256

    var jobs: [Job]

    /// `algorithms`: `a,b,c` or `all` (nil: `--algorithm`'s); `sweep`: `KNOB=v1,v2,...` (nil:
    /// none). An algorithm that does not have a swept algorithm option runs once, as a baseline.
    init(_ training: TrainingOptions, algorithms: String?, sweep: String?) throws(LapwingError) {
        let names = try Self.algorithmNames(algorithms, default: training.algorithm)
        var knob: String?
        var values: [String?] = [nil]
        var runOption = false
        if let sweep {
            let parts = sweep.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let list = parts.count == 2 ? parts[1].split(separator: ",", omittingEmptySubsequences: false).map(String.init) : []
            guard parts.count == 2, !parts[0].isEmpty, !list.isEmpty, list.allSatisfy({ !$0.isEmpty }) else {
                throw LapwingError(.invalidArgument, "--sweep \(sweep): expected KNOB=V1,V2,..., e.g. period=1,4,16,64")
            }
            guard list.count <= 64, Set(list).count == list.count else {
                throw LapwingError(.invalidArgument, "--sweep \(sweep): give 1 to 64 different values")
            }
            var probe = training
            runOption = try probe.set(parts[0], to: list[0])
            if !runOption {
                guard names.contains(where: { Algorithms.declares($0, knob: parts[0]) }) || Compressors.knobNames.contains(parts[0])
                else {
                    throw LapwingError(
                        .invalidArgument, "--sweep \(parts[0]): not an option of \(names.joined(separator: ", "))",
                        detail: "sweep one of their options or one of \(TrainingOptions.sweepable.joined(separator: ", "))")
                }
                if training.algorithmOptions.contains(where: { $0 == "--\(parts[0])" || $0.hasPrefix("--\(parts[0])=") }) {
                    throw LapwingError(.invalidArgument, "--sweep \(parts[0]): also given as --\(parts[0]); give it once")
                }
            }
            knob = parts[0]
            values = list
        }
        var made: [[Job]] = names.map { _ in [] }
        for (k, value) in values.enumerated() {
            var options = training
            if let knob, let value {
                if runOption {
                    _ = try options.set(knob, to: value)
                } else {
                    options.algorithmOptions += ["--\(knob)=\(value)"]
                }
            }
            let parsed = try Algorithms.parseOptions(options.algorithmOptions, forEach: names, compress: options.compress)
            for (a, name) in names.enumerated() {
                let swept = knob.map { runOption || Algorithms.declares(name, knob: $0) || Compressors.knobNames.contains($0) } ?? false
                if !swept && k > 0 { continue }
                var o = options
                o.algorithm = name
                let label = swept ? "\(name) \(knob ?? "")=\(value ?? "")" : name
                made[a].append(
                    Job(
                        folder: "", label: label, algorithm: name, sweptOption: runOption && swept ? "\(knob ?? "")=\(value ?? "")" : nil,
                        options: o, config: parsed[a].algorithm, compression: parsed[a].compression))
            }
        }
        jobs = made.flatMap { $0 }
        guard jobs.count <= Self.maxJobs else {
            throw LapwingError(.invalidArgument, "--algorithms and --sweep make \(jobs.count) jobs; a study runs at most \(Self.maxJobs)")
        }
        for i in jobs.indices {
            let safe = String(jobs[i].label.map { $0.isLetter || $0.isNumber || $0 == "." || $0 == "_" ? $0 : "-" })
            jobs[i].folder = (i + 1 < 10 ? "0" : "") + "\(i + 1)-" + safe
        }
    }

    static func algorithmNames(_ text: String?, default name: String) throws(LapwingError) -> [String] {
        guard let text else { return [name] }
        if text == "all" { return Algorithms.names }
        let names = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard !names.isEmpty, names.allSatisfy({ !$0.isEmpty }) else {
            throw LapwingError(.invalidArgument, "--algorithms \(text): expected NAME,NAME,... or all")
        }
        guard Set(names).count == names.count else {
            throw LapwingError(.invalidArgument, "--algorithms \(text): an algorithm is named twice")
        }
        for n in names where !Algorithms.names.contains(n) {
            throw LapwingError(
                .invalidArgument, "--algorithms \(n): unknown algorithm", detail: "choose from \(Algorithms.names.joined(separator: ", ")) or all")
        }
        return names
    }

    /// The study's title: the data set's name and the model ("fashion-mnist mlp:784-256-10").
    static func title(data: String, model: String) -> String {
        let body = data.split(separator: ":", maxSplits: 1).last.map(String.init) ?? data
        let first = body.split(whereSeparator: { $0 == "," || $0 == ";" }).first.map(String.init) ?? body
        var name = (first as NSString).lastPathComponent
        for suffix in [".gz", ".train", ".txt"] where name.hasSuffix(suffix) { name.removeLast(suffix.count) }
        return "\(name) \(model)"
    }
}
