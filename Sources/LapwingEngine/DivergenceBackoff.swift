import Foundation
import LapwingJob

extension JobHost {
    /// The spec a job whose training diverged goes on with under `--on-divergence backoff:N`,
    /// after `done` backoffs: half the learning rate, from the job's last checkpoint (written
    /// before the divergence: a diverging model is never checkpointed), or from the start when
    /// there is none or the algorithm does not resume from one. Nil when the job should fail:
    /// it did not diverge, or it has had its N backoffs.
    public static func backoff(_ spec: JobSpec, after summary: JobSummary?, checkpoint: String?, done: Int) -> JobSpec? {
        guard summary?.diverged == true, done < (spec.divergenceBackoffs ?? 0) else { return nil }
        var next = spec
        next.schedule.base /= 2
        next.schedule.minimum /= 2
        next.resumeFrom = nil
        if let checkpoint, FileManager.default.fileExists(atPath: checkpoint) {
            next.resumeFrom = checkpoint
            if (try? Algorithms.checkResumable(next)) == nil { next.resumeFrom = nil }
        }
        return next
    }

    /// What a backoff says in a record, a log and on a terminal.
    public static func describeBackoff(_ next: JobSpec, count: Int, of limit: Int) -> String {
        "training diverged; going on \(next.resumeFrom == nil ? "from the start" : "from its last checkpoint") "
            + "with half the learning rate, \(next.schedule.base) (backoff \(count) of \(limit))"
    }
}
