import Foundation
import LapwingCore
import LapwingEngine
import LapwingJob

/// Which queued job starts next, and which are held by their owners' caps (`schedule`).
extension JobManager {
    struct Choice {
        var next: JobRecord?
        /// Jobs held by a cap, with the reason that names it.
        var held: [(id: String, reason: String)] = []
    }

    /// Among the queued jobs (oldest first) whose owners are under their caps given the
    /// running ones: with fair share, the job of the owner served least (core-seconds of its
    /// jobs within the window, running ones up to now), and among that owner's jobs (or owners
    /// served alike) the highest priority, then the oldest; without fair share, the highest
    /// priority, then the oldest, whoever owns it.
    static func choose(
        _ queued: [JobRecord], busy: [JobRecord], all: [JobRecord], settings: DaemonSettings, numaNodes: Int,
        now: Double = Date().timeIntervalSince1970
    ) -> Choice {
        var choice = Choice()
        // Each owner's limits and name, looked up once a pass.
        var owners: [UInt32: (limits: DaemonSettings.Limits, from: [String], user: String)] = [:]
        var eligible: [JobRecord] = []
        for r in queued {
            let owner = owners[r.owner] ?? {
                let (lim, from) = settings.limits(of: r.owner)
                return (lim, from, UserDatabase.name(of: r.owner) ?? "uid \(r.owner)")
            }()
            owners[r.owner] = owner
            let (lim, from, user) = owner
            let mine = busy.filter { $0.owner == r.owner }
            func key(_ perUser: String, _ i: Int) -> String {
                from[i] == "[Limits]" ? "\(perUser)PerUser in \(from[i])" : "\(perUser) in \(from[i])"
            }
            if let cap = lim.cores {
                let cores = mine.reduce(0) { $0 + $1.spec.workers }
                if r.spec.workers > cap {
                    choice.held.append((r.id, "held by a cap: it needs \(r.spec.workers) cores, more than the \(cap) that \(key("Cores", 0)) allows \(user)"))
                    continue
                }
                if cores + r.spec.workers > cap {
                    choice.held.append((r.id, "held by a cap: \(user)'s running jobs hold \(cores) of the \(cap) \(cap == 1 ? "core" : "cores") that \(key("Cores", 0)) allows"))
                    continue
                }
            }
            if let cap = lim.arenaBytes, let need = r.spec.arenaBytes(numaNodes: numaNodes) {
                let held = mine.reduce(0) { $0 + ($1.spec.arenaBytes(numaNodes: numaNodes) ?? 0) }
                if held + need > cap {
                    choice.held.append((r.id, "held by a cap: \(user)'s running jobs hold \(formatBytes(held)) of /dev/shm and this one needs \(formatBytes(need)); \(key("ArenaBytes", 2)) allows \(formatBytes(cap))"))
                    continue
                }
            }
            eligible.append(r)
        }
        var served: [UInt32: Double] = [:]
        if settings.fairShare, Set(eligible.map(\.owner)).count > 1 {
            let since = now - settings.fairShareWindow
            for r in all {
                guard let start = r.started else { continue }
                let end = r.ended ?? (r.state.isFinished ? start : now)
                let overlap = max(0, min(end, now) - max(start, since))
                served[r.owner, default: 0] += overlap * Double(r.spec.workers)
            }
        }
        // Served least first, then the highest priority; `min` keeps the first (oldest) of equals.
        choice.next = eligible.min { a, b in
            let (sa, sb) = (served[a.owner] ?? 0, served[b.owner] ?? 0)
            return sa != sb ? sa < sb : (a.priority ?? 0) > (b.priority ?? 0)
        }
        return choice
    }

    /// Refuses a priority above the highest its owner may give (MaxPriority), naming the limit
    /// and where it is set; `file`: the configuration file the daemon reads.
    static func checkPriority(_ priority: Int, owner: UInt32, settings: DaemonSettings, file: String?) throws(LapwingError) {
        let (lim, from) = settings.limits(of: owner)
        let most = lim.maxPriority ?? 0
        guard priority > most else { return }
        let user = UserDatabase.name(of: owner) ?? "uid \(owner)"
        let set: String
        if let source = settings.source {
            set = "MaxPriority in \(from[3]) of \(source)"
        } else {
            set = "MaxPriority's default: no configuration file\(file.map { " at \($0)" } ?? "")"
        }
        throw LapwingError(
            .invalidArgument, "priority \(priority) is above the highest \(user) may give a job, \(most) (\(set))",
            detail: "give \(most) or lower; an administrator raises it with MaxPriority in [Limits], [User:NAME] or [Group:NAME]")
    }

    /// Refuses a submit that would put its owner over its cap of queued jobs.
    static func checkQueueCap(owner: UInt32, queued: Int, settings: DaemonSettings) throws(LapwingError) {
        let (lim, from) = settings.limits(of: owner)
        guard let cap = lim.queuedJobs, queued >= cap else { return }
        let user = UserDatabase.name(of: owner) ?? "uid \(owner)"
        let key = from[1] == "[Limits]" ? "QueuedJobsPerUser in [Limits]" : "QueuedJobs in \(from[1])"
        throw LapwingError(
            .busy, "\(user) has \(queued) queued \(queued == 1 ? "job" : "jobs"), the most that \(key) allows (\(cap))",
            detail: "wait for one to start, or cancel one")
    }
}
