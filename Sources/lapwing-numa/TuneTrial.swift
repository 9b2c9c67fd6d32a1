import Foundation
import LapwingCore
import LapwingJob
import LapwingOptions

#if canImport(Glibc)
import Glibc
#endif

/// What one short run of a candidate measured.
struct TuneTrial: Sendable {
    let candidate: TuneCandidate
    let stage: String
    let samples: Int
    let trainSeconds: Double
    let wallSeconds: Double
    /// Test loss and accuracy at the end of the run.
    let loss: Double?
    let accuracy: Double?
    let failure: String?
    /// Samples per second in the run's second half (after its start-up: forks, first touches).
    let steadyRate: Double
    /// Loss decrease per second of steady training: (initial loss - loss) / (samples /
    /// steadyRate); -inf for a run that failed or diverged. A long job pays the start-up once;
    /// in a trial of a second it would weigh on many workers more than on one.
    let score: Double

    var json: [String: Any] {
        var o: [String: Any] = [
            "algorithm": candidate.algorithm, "workers": candidate.workers, "batch": candidate.batch, "stage": stage,
            "samples": samples, "train_seconds": trainSeconds, "wall_seconds": wallSeconds, "steady_samples_per_second": steadyRate,
            "score": score.isFinite ? score : NSNull(),
        ]
        o["replicas"] = candidate.replicas ?? NSNull()
        o["period"] = candidate.period ?? NSNull()
        o["test_loss"] = loss ?? NSNull()
        o["test_accuracy"] = accuracy ?? NSNull()
        o["failure"] = failure ?? NSNull()
        return o
    }
}

/// Runs trials as `lapwing run --config TRIAL.conf --epochs E --eval-every 0 --json`: the same
/// command, and the same job file, that the tuned configuration will be run with, each in a
/// scratch directory that is removed afterwards.
struct TuneRunner {
    let lapwing: String
    let scratch: String
    private(set) var count = 0

    init(lapwing: String) throws(LapwingError) {
        self.lapwing = lapwing
        var template = Array((NSTemporaryDirectory() + "/lapwing-tune-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { throw LapwingError.system("mkdtemp", errno: errno, object: NSTemporaryDirectory()) }
        scratch = String(cString: made)
    }

    /// The `lapwing` beside this executable (or `explicit`), checked to be runnable.
    static func locateLapwing(_ explicit: String?) throws(LapwingError) -> String {
        let path = explicit ?? URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("lapwing").path
        let resolved: String
        if explicit == nil, !FileManager.default.isExecutableFile(atPath: path),
            let self_ = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        {
            resolved = URL(fileURLWithPath: self_).deletingLastPathComponent().appendingPathComponent("lapwing").path
        } else {
            resolved = path
        }
        guard FileManager.default.isExecutableFile(atPath: resolved) else {
            throw LapwingError(.notFound, "\(resolved): no lapwing executable there", detail: "give its path with --lapwing")
        }
        return resolved
    }

    /// One run of `options` for `epochs`: the summary (or why there is none), the wall time,
    /// and the samples and seconds of its evaluation half-way (nil if it had none).
    mutating func run(_ options: TrainingOptions, epochs: Double) throws(LapwingError) -> (
        summary: JobSummary?, wall: Double, failure: String?, halfway: (samples: Int, elapsed: Double)?
    ) {
        count += 1
        let conf = "\(scratch)/trial-\(count).conf", out = "\(scratch)/trial-\(count)"
        defer {
            try? FileManager.default.removeItem(atPath: out)
            try? FileManager.default.removeItem(atPath: conf)
        }
        try JobConfigFile.write(options, comments: ["a trial of lapwing-numa tune"], to: conf)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: lapwing)
        process.arguments = [
            "run", "--config", conf, "--epochs", String(epochs), "--eval-every", String(epochs / 2), "--checkpoint-every", "0", "--json",
            "--output-dir", out,
        ]
        // stderr goes to a file (read when the run has ended); stdout, one summary line, to a pipe.
        let errPath = "\(scratch)/trial-\(count).err"
        defer { try? FileManager.default.removeItem(atPath: errPath) }
        guard FileManager.default.createFile(atPath: errPath, contents: nil), let errFile = FileHandle(forWritingAtPath: errPath) else {
            throw LapwingError.system("create", errno: errno, object: errPath)
        }
        defer { try? errFile.close() }
        let stdout = Pipe()
        process.standardOutput = stdout
        process.standardError = errFile
        let start = Date()
        do { try process.run() } catch {
            throw LapwingError(.internalError, "\(lapwing): cannot start: \(error)")
        }
        let outData = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let wall = Date().timeIntervalSince(start)
        let lastLine = String(decoding: outData, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
        if let summary = try? JSONDecoder().decode(JobSummary.self, from: Data(lastLine.utf8)) {
            return (summary, wall, summary.outcome == "completed" ? nil : summary.reason ?? summary.outcome, halfway(out, summary))
        }
        let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        let why = err.split(separator: "\n").last.map(String.init) ?? "exit status \(process.terminationStatus)"
        return (nil, wall, why, nil)
    }

    /// The first evaluation before the end, from the run's metrics.jsonl.
    private func halfway(_ dir: String, _ summary: JobSummary) -> (samples: Int, elapsed: Double)? {
        guard let text = try? String(contentsOfFile: dir + "/metrics.jsonl", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            guard let e = try? JSONDecoder().decode(HostEvent.self, from: Data(line.utf8)), e.event == .evaluation,
                let samples = e.samples, let elapsed = e.elapsed, samples < summary.samples, elapsed < summary.trainSeconds
            else { continue }
            return (samples, elapsed)
        }
        return nil
    }

    func removeScratch() { try? FileManager.default.removeItem(atPath: scratch) }
}
