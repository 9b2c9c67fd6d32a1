import Foundation
import LapwingCore
import LapwingJob

/// The job host's own log: one line per thing that happened, with its time, on stderr (the
/// daemon points it at the job's host.log, which `lapwing logs JOB` shows; `lapwing run` shows
/// it on the terminal). Progress lines are not logged (the metrics hold those); starts,
/// evaluations, checkpoints, replaced processes, warnings and the end are.
public enum HostLog {
    /// Writes `message` as one line: `2026-12-02T04:50:01.123Z job j3: message`.
    public static func write(_ job: String, _ message: String) {
        writeError("\(timestamp()) job \(job): \(message)\n")
    }

    /// The line an event gets in the log, if any.
    public static func line(for e: HostEvent, spec: JobSpec) -> String? {
        switch e.event {
        case .started:
            guard let s = e.started else { return nil }
            let nodes = Set(s.replicaNodes).sorted().map(String.init).joined(separator: ",")
            return "started: \(spec.algorithm.description)\(spec.compression.map { ", compressed \($0.description)" } ?? ""), "
                + "\(spec.model) on \(spec.data) (\(s.trainRows) training rows, \(s.testRows) test rows); host pid \(s.host), "
                + "workers \(s.workers.map(String.init).joined(separator: ",")) on cpus \(s.workerCPUs.map(String.init).joined(separator: ","))"
                + "\(s.averager.map { ", averager \($0)" } ?? ""); \(s.replicas) replica(s) on node(s) \(nodes); "
                + "\(s.parameters) parameters; arena \(s.arena); \(DataCopy.describe(s.dataCopies)); BLAS kernels \(s.blas); batch \(spec.batch), "
                + "learning rate \(spec.schedule.base) (\(spec.schedule.kind.rawValue)), \(spec.epochs) epochs"
                + "\(spec.resumeFrom.map { "; resumed from \($0)" } ?? "")"
        case .evaluation:
            let acc = e.testAccuracy.map { String(format: "test accuracy %.2f%%, ", $0 * 100) } ?? ""
            let loss = e.testLoss.map { String(format: "test loss %.4f, ", $0) } ?? ""
            let train = e.trainLoss.map { String(format: "train loss %.4f, ", $0) } ?? ""
            return String(format: "epoch %.2f of %g: ", e.epoch ?? 0, e.epochs ?? spec.epochs) + acc + loss + train
                + String(format: "%.0f samples/s", e.samplesPerSecond ?? 0)
        case .finished:
            guard let s = e.summary else { return nil }
            let acc = s.testAccuracy.map { String(format: ", test accuracy %.2f%%", $0 * 100) } ?? ""
            return "\(s.outcome)\(s.reason.map { " (\($0))" } ?? ""): \(s.samples) samples in "
                + String(format: "%.1f s (%.0f samples/s)", s.trainSeconds, s.samplesPerSecond) + acc
                + "\(s.modelPath.map { "; model \($0)" } ?? "")"
        case .failed:
            return "failed: \(e.error ?? "unknown error")"
        case .rendezvous:
            return "the other machines meet this one at ompi-server \(e.machineMeeting?.server ?? "?") as \(e.machineMeeting?.name ?? "?")"
        case .progress:
            return nil
        }
    }

    static func timestamp() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var t = tv.tv_sec
        var parts = tm()
        gmtime_r(&t, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
            parts.tm_hour, parts.tm_min, parts.tm_sec, Int(tv.tv_usec / 1000))
    }
}
