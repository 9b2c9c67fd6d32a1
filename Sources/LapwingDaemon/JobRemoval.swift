import Foundation
import LapwingCore
import LapwingJob

/// Finished jobs leave: `lapwing rm JOB` (the owner or root), and the retention policy of the
/// configuration file ([Retention] KeepFinishedJobs, KeepFinishedDays).
extension JobManager {
    public func remove(_ id: String, by uid: UInt32) throws(LapwingError) -> JobRecord {
        let r = try owned(id, by: uid)
        guard r.state.isFinished else {
            throw LapwingError(.busy, "job \(id) is \(r.state.rawValue): only a finished job is removed", detail: "cancel it first")
        }
        try discard(id)
        log("job \(id) removed by uid \(uid)")
        return r
    }

    /// Drops a finished job from memory, then its directory (record, model, metrics, logs).
    func discard(_ id: String) throws(LapwingError) {
        let gone: Bool = state.withLock { s in
            guard let r = s.records[id], r.state.isFinished, s.hosts[id] == nil, s.detached[id] == nil else { return false }
            s.records[id] = nil
            s.order.removeAll { $0 == id }
            s.watchers[id] = nil
            s.unsaved.remove(id)
            s.hostQuickDeaths[id] = nil
            return true
        }
        guard gone else { throw LapwingError(.busy, "job \(id) changed while it was being removed") }
        writers.withLock { $0[id] = nil }
        try store.remove(id)
    }

    /// Removes the finished jobs that the retention policy no longer keeps: those that ended
    /// more than KeepFinishedDays ago, then the oldest beyond the newest KeepFinishedJobs.
    /// Running and queued jobs are never touched.
    public func enforceRetention(now: Double = Date().timeIntervalSince1970) {
        let settings = self.settings.withLock { $0 }
        guard settings.keepFinishedJobs != nil || settings.keepFinishedDays != nil else { return }
        let finished = state.withLock { s in s.order.compactMap { s.records[$0] }.filter { $0.state.isFinished } }
            .sorted { ($0.ended ?? $0.submitted) < ($1.ended ?? $1.submitted) }
        var drop: [(String, String)] = []
        var kept: [JobRecord] = []
        for r in finished {
            if let days = settings.keepFinishedDays, (r.ended ?? r.submitted) < now - days * 86400 {
                drop.append((r.id, "it ended more than \(Int(days)) days ago (KeepFinishedDays)"))
            } else {
                kept.append(r)
            }
        }
        if let n = settings.keepFinishedJobs, kept.count > n {
            for r in kept.prefix(kept.count - n) {
                drop.append((r.id, "only the newest \(n) finished jobs are kept (KeepFinishedJobs)"))
            }
        }
        for (id, why) in drop {
            do throws(LapwingError) {
                try discard(id)
                log("job \(id) removed by the retention policy: \(why)")
            } catch {
                log("job \(id): the retention policy could not remove it: \(error)")
            }
        }
    }
}
