import Foundation
import LapwingCore
import LapwingJob

/// One job of a study as its table row and plots see it: a label, its algorithm (the plots'
/// colour), the settings that tell it from the others, its summary and its evaluations (the
/// `evaluation` lines of its metrics.jsonl, as the job host writes them).
public struct StudyJob: Sendable {
    public var label: String
    public var algorithm: String
    /// The knobs and options that set this job apart ("period=4 compress=dq").
    public var settings: String
    public var summary: JobSummary?
    public var evaluations: [HostEvent]

    public init(label: String, algorithm: String, settings: String, summary: JobSummary?, evaluations: [HostEvent]) {
        self.label = label
        self.algorithm = algorithm
        self.settings = settings
        self.summary = summary
        self.evaluations = evaluations
    }

    /// The largest metrics file read (a job evaluated every 0.01 epoch for 1000 epochs is ~50 MB).
    public static let maxMetricsBytes = 256 << 20

    /// The best test accuracy of any evaluation (the final one included).
    public var bestAccuracy: Double? {
        (evaluations.compactMap(\.testAccuracy) + [summary?.testAccuracy].compactMap { $0 }).max()
    }

    /// A job's metrics file (JSON lines; only `evaluation` lines are kept) and, when one lies
    /// beside it, its summary.json; errors name the file and line.
    public static func load(metrics path: String) throws(LapwingError) -> StudyJob {
        let events = try readEvents(path)
        let dir = (path as NSString).deletingLastPathComponent
        let name = ((dir.isEmpty ? path : dir) as NSString).lastPathComponent
        var summary: JobSummary?
        let summaryPath = (dir.isEmpty ? "." : dir) + "/summary.json"
        if let data = FileManager.default.contents(atPath: summaryPath) {
            do {
                summary = try JSONDecoder().decode(JobSummary.self, from: data)
            } catch {
                throw LapwingError(.invalidData, "\(summaryPath): not a job summary: \(error)")
            }
        }
        let algorithm = summary?.algorithm ?? name
        let settings = summary.map { Self.settings(of: $0) } ?? ""
        return StudyJob(
            label: summary == nil ? name : "\(algorithm) (\(name))", algorithm: algorithm, settings: settings, summary: summary,
            evaluations: events)
    }

    /// The knobs of a summary as `name=value` words, with its compressor unless `compression` is false.
    public static func settings(of s: JobSummary, compression: Bool = true) -> String {
        var words = (s.knobs ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\(StudyFormat.number($0.value))" }
        if compression, let c = s.compression { words.append("compress=\(c.replacingOccurrences(of: " ", with: ","))") }
        return words.joined(separator: " ")
    }

    public static func readEvents(_ path: String) throws(LapwingError) -> [HostEvent] {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw LapwingError(.notFound, "\(path): no such file, or not readable")
        }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: maxMetricsBytes + 1) ?? Data()
        } catch {
            throw LapwingError(.invalidData, "\(path): \(error)")
        }
        guard data.count <= maxMetricsBytes else {
            throw LapwingError(.invalidData, "\(path): larger than \(maxMetricsBytes >> 20) MiB, not a metrics file Lapwing plots")
        }
        var events: [HostEvent] = []
        for (n, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let e = HostEvent.decode(line: line) else {
                throw LapwingError(.invalidData, "\(path):\(n + 1): not a metrics line (a JSON object of a job's events)")
            }
            if e.event == .evaluation { events.append(e) }
        }
        return events
    }
}

/// Numbers as the table and the plots write them.
public enum StudyFormat {
    /// `4`, `0.25`, `1e-05`: whole numbers without a point.
    public static func number(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v)
    }

    /// `v` with `digits` digits after the point.
    public static func fixed(_ v: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", v) }

    /// Bytes in SI units: `512 B`, `3.2 MB`, `1.1 GB`.
    public static func bytes(_ v: Double) -> String {
        let units = ["B", "kB", "MB", "GB", "TB", "PB"]
        var x = v
        var u = 0
        while abs(x) >= 1000 && u < units.count - 1 {
            x /= 1000
            u += 1
        }
        return u == 0 ? "\(Int(x)) B" : (x >= 100 || x == x.rounded() ? "\(Int(x.rounded())) \(units[u])" : "\(fixed(x, 1)) \(units[u])")
    }
}
