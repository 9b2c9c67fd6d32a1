import Foundation
import LapwingArena
import LapwingCore
import LapwingEngine
import LapwingJob
import LapwingTopology
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The daemon's jobs: a queue with admission by free cores and free /dev/shm, one job host per running job
/// (launched by posix_spawn of our own binary, supervised by a thread that reads its events),
/// ownership by uid, and every change saved to the state directory.
public final class JobManager: Sendable {
    /// Gets each event of a job; `final` is true for the last call, once the job has ended
    /// and its record holds the outcome.
    public typealias Watcher = @Sendable (_ event: HostEvent, _ final: Bool) -> Void

    struct State: ~Copyable {
        var records: [String: JobRecord] = [:]
        var order: [String] = []
        var hosts: [String: HostProcess] = [:]
        /// Hosts started by an earlier daemon, re-attached by pid and start time.
        var detached: [String: HostIdentity] = [:]
        /// Descriptors of queued jobs, held until their host starts.
        var pendingFiles: [String: [(role: String, fd: Int32)]] = [:]
        /// Descriptors of running jobs, held until they end (a host that dies is started again).
        var heldFiles: [String: [(role: String, fd: Int32)]] = [:]
        /// Each job's hosts' deaths in a row before they started training (a crash loop).
        var hostQuickDeaths: [String: Int] = [:]
        var watchers: [String: [Int: Watcher]] = [:]
        var nextWatcher = 0
        var nextJob = 1
        var shuttingDown = false
        /// When each running job's memory was last measured (`noteAccounting`; uptime seconds).
        var memorySampled: [String: Double] = [:]
        /// Jobs whose record on disk is behind the one here (a save failed; retried).
        var unsaved: Set<String> = []
    }

    /// The lock that makes one writer of a job's record.
    final class RecordWriter: Sendable {
        let lock = Mutex(())
    }

    public let config: DaemonConfig
    let store: JobStore
    /// NUMA nodes of this machine: the replica count some algorithms default to, for arena estimates.
    let numaNodes: Int
    /// Limits, fair share and retention: the configuration file's, swapped whole on a reload.
    let settings: Mutex<DaemonSettings>
    /// The cores other processes keep busy ([Scheduling] CountOtherLoad).
    let otherLoad = Mutex(OtherLoad())
    /// What the metrics endpoint exports.
    public let metrics = DaemonMetrics()
    let state = Mutex(State())
    let writers = Mutex<[String: RecordWriter]>([:])
    let log: @Sendable (String) -> Void
    let descriptors: DescriptorStore

    /// `inherited`: descriptors systemd handed back from its store (`DescriptorStore`).
    public init(
        config: DaemonConfig, inherited: [(fd: Int32, name: String)] = [], log: @escaping @Sendable (String) -> Void
    ) throws(LapwingError) {
        self.config = config
        self.log = log
        settings = Mutex(config.settings)
        descriptors = DescriptorStore(notifier: SystemdNotifier.fromEnvironment(), log: log)
        var stored = DescriptorStore.byJob(inherited)
        numaNodes = max(1, QuickCounts.numaNodes() ?? 1)
        store = try JobStore(root: config.stateDirectory)
        let saved = store.loadAll(problem: log)
        let store = self.store
        var detached: [(String, HostIdentity)] = []
        state.withLock { s in
            for var r in saved.sorted(by: { $0.submitted < $1.submitted }) {
                if r.state == .queued, let files = stored.removeValue(forKey: r.id) {
                    // Its data came back from systemd's descriptor store: it stays queued.
                    s.pendingFiles[r.id] = files
                } else if !r.state.isFinished {
                    switch Self.recover(r, directory: store.directory(of: r.id)) {
                    case .reattach(let host):
                        // Its host outlived the daemon that started it: keep watching it (and
                        // its data, if they came back, for a restart of its host).
                        detached.append((r.id, host))
                        if let files = stored.removeValue(forKey: r.id) { s.heldFiles[r.id] = files }
                    case .ended(let summary):
                        // It ended while no daemon watched: its summary says how.
                        Self.apply(summary: summary, failure: nil, to: &r)
                        r.ended = r.ended ?? Date().timeIntervalSince1970
                        try? store.save(r)
                    case .lost(let why):
                        r.reason = why
                        r.state = .interrupted
                        r.ended = r.ended ?? Date().timeIntervalSince1970
                        try? store.save(r)
                    }
                }
                s.records[r.id] = r
                s.order.append(r.id)
                if let n = Int(r.id.dropFirst().prefix { $0.isNumber }), n >= s.nextJob { s.nextJob = n + 1 }
            }
            for (id, host) in detached { s.detached[id] = host }
        }
        // Descriptors of jobs that are over: closed, and dropped from the store.
        for (id, files) in stored {
            for f in files { close(f.fd) }
            descriptors.drop(id, roles: files.map(\.role))
        }
        // Control groups of jobs whose host is gone: whatever is left in them is killed.
        if let groups = config.jobCgroups {
            let live = Set(detached.map(\.0))
            for id in groups.jobs() where !live.contains(id) {
                if let killed = try? groups.remove(job: id) {
                    log("job \(id): removed the control group its host left\(killed > 0 ? ", killing \(killed) process(es)" : "")")
                }
            }
        }
        for (id, host) in detached {
            log("job \(id): re-attached to its job host (pid \(host.pid)), which outlived the previous daemon")
            let thread = Thread { [self] in superviseDetached(id, host) }
            thread.name = "reattach-\(id)"
            thread.start()
        }
        enforceRetention()
    }

    /// What a new daemon makes of a job that an earlier one left unfinished.
    enum Recovery {
        case reattach(HostIdentity)
        case ended(JobSummary)
        case lost(String)
    }

    static func recover(_ r: JobRecord, directory: String) -> Recovery {
        if r.state == .running || r.state == .paused, let pid = r.hostPID, let start = r.hostStartTime {
            let host = HostIdentity(pid: pid, startTime: start)
            if host.isAlive, (try? Arena.attach(jobID: r.id)) != nil { return .reattach(host) }
        }
        if r.state == .running || r.state == .paused, let summary = readSummary(directory), summary.job == r.id {
            return .ended(summary)
        }
        if r.state == .queued {
            return .lost("queued when the daemon stopped: its data descriptors went with that daemon; submit it again")
        }
        // A host of a record without a start time (before 0.3) is stopped through its arena so
        // that it ends cleanly; it is never taken for the job's host on its pid alone. An arena
        // whose host is gone is swept (the daemon's user owns it; the job's owner could not
        // remove it).
        if let pid = r.hostPID, kill(pid, 0) == 0, r.hostStartTime == nil, var arena = try? Arena.attach(jobID: r.id) {
            arena.setState(.stopping)
            arena.keepSegment()
        } else if !(r.hostPID.flatMap { pid in r.hostStartTime.map { HostIdentity(pid: pid, startTime: $0).isAlive } } ?? false) {
            try? Arena.remove(jobID: r.id)
        }
        let was = r.state.rawValue
        return .lost(r.reason.map { "daemon restarted (\($0))" } ?? "the daemon stopped while the job was \(was)")
    }

    static func readSummary(_ directory: String) -> JobSummary? {
        guard let data = FileManager.default.contents(atPath: directory + "/summary.json") else { return nil }
        return try? JSONDecoder().decode(JobSummary.self, from: data)
    }

    // MARK: Queries

    public func list() -> [JobRecord] {
        state.withLock { s in s.order.compactMap { s.records[$0] } }
    }

    public func status(_ id: String) throws(LapwingError) -> JobRecord {
        guard let r = state.withLock({ $0.records[id] }) else { throw Self.notFound(id) }
        return r
    }

    public var counts: (running: Int, queued: Int) {
        state.withLock { s in
            (s.records.values.filter { $0.state == .running || $0.state == .paused }.count,
             s.records.values.filter { $0.state == .queued }.count)
        }
    }

    // MARK: Commands

    /// Queues a job; its data arrive as descriptors opened by the client (taken over here: on
    /// success they belong to the job, on failure the caller closes them). `files` must name
    /// each file the data spec reads exactly once (`SubmitCheck.files`). `priority` (nil: 0)
    /// must be within the owner's MaxPriority.
    public func submit(
        spec inSpec: JobSpec, owner: UInt32, files: [(role: String, name: String, fd: Int32)], priority: Int? = nil
    ) throws(LapwingError) -> JobRecord {
        var spec = inSpec
        try SubmitCheck.files(files.map { ($0.role, $0.name) }, data: spec.data)
        // Roles are unique now; built without trapping all the same.
        spec.dataNames = Dictionary(files.map { ($0.role, $0.name) }, uniquingKeysWith: { first, _ in first })
        // The host reads through the descriptors only, never the spec's paths.
        spec.dataDescriptors = nil
        let result: Result<JobRecord, LapwingError> = state.withLock { s in
            if s.shuttingDown { return .failure(LapwingError(.busy, "the daemon is shutting down")) }
            let queued = s.records.values.filter { $0.owner == owner && $0.state == .queued }.count
            do throws(LapwingError) {
                let current = settings.withLock { $0 }
                if spec.machine != nil && !current.acrossMachines {
                    throw LapwingError(
                        .permissionDenied, "this daemon takes no jobs across machines (AcrossMachines = no in [Scheduling] of \(config.settingsPath ?? "lapwingd.conf"))")
                }
                if let priority {
                    try Self.checkPriority(priority, owner: owner, settings: current, file: config.settingsPath)
                }
                try Self.checkQueueCap(owner: owner, queued: queued, settings: current)
            } catch { return .failure(error) }
            let id = "j\(s.nextJob)-\(String(UInt32.random(in: 0...0xffff), radix: 16))"
            s.nextJob += 1
            spec.id = id
            spec.outputDir = store.directory(of: id)
            do throws(LapwingError) {
                try JobHost.preflight(spec)
                // A job whose arena could never fit is refused now, not queued for ever.
                if let need = spec.arenaBytes(numaNodes: numaNodes), let space = try? Arena.sharedMemorySpace(),
                    UInt64(need) > space.total
                {
                    throw LapwingError(
                        .noSpace, "job needs \(formatBytes(need)) of /dev/shm for its arena (\(spec.model))",
                        detail: "/dev/shm holds \(formatBytes(Int(clamping: space.total))) in all")
                }
            } catch { return .failure(error) }
            var record = JobRecord(
                id: id, owner: owner, spec: spec, state: .queued, reason: "waiting to be scheduled",
                submitted: Date().timeIntervalSince1970, started: nil, ended: nil, hostPID: nil,
                files: spec.dataNames ?? [:], progress: nil, summary: nil)
            record.priority = priority
            // A job exists once its record is on disk; a failed first save leaves nothing behind.
            do throws(LapwingError) { try store.create(record) } catch { return .failure(error) }
            s.records[id] = record
            s.order.append(id)
            s.pendingFiles[id] = files.map { ($0.role, $0.fd) }
            return .success(record)
        }
        let record = try result.get()
        descriptors.keep(record.id, files.map { ($0.role, $0.fd) })
        log("job \(record.id) submitted by uid \(owner): \(spec.algorithm.description) \(spec.model) on \(spec.data)"
            + (priority.map { ", priority \($0)" } ?? ""))
        schedule()
        return try self.status(record.id)
    }

    /// Reads the configuration file again (SIGHUP, `systemctl reload`): the new limits apply to
    /// jobs that start from now on, running jobs are left as they are. A file that does not
    /// read is refused with its line and reason, and the previous settings stay.
    @discardableResult
    public func reloadSettings() throws(LapwingError) -> DaemonSettings {
        guard let path = config.settingsPath else { return settings.withLock { $0 } }
        let fresh = access(path, F_OK) == 0 ? try DaemonSettings.read(path) : DaemonSettings()
        settings.withLock { $0 = fresh }
        log("SIGHUP: configuration \(access(path, F_OK) == 0 ? "read again from \(path)" : "at the defaults (no file at \(path))")")
        enforceRetention()
        schedule()
        return fresh
    }

    public func pause(_ id: String, by uid: UInt32) throws(LapwingError) -> JobRecord {
        try setRunState(id, by: uid, from: .running, to: .paused, arena: (.running, .paused))
    }

    public func resume(_ id: String, by uid: UInt32) throws(LapwingError) -> JobRecord {
        let r = try owned(id, by: uid)
        if r.state.isFinished && r.state != .succeeded {
            throw LapwingError(
                .invalidArgument, "job \(id) is \(r.state.rawValue): resuming it needs its data files again",
                detail: "`lapwing resume \(id)` sends them (the daemon gave back the first ones when the job ended)")
        }
        return try setRunState(id, by: uid, from: .paused, to: .running, arena: (.paused, .running))
    }

    /// Queues an interrupted, failed or cancelled job again, to go on from its checkpoint with
    /// the data files it is given again (checked like a submit's, taken over on success).
    public func resumeFromCheckpoint(_ id: String, by uid: UInt32, files: [(role: String, name: String, fd: Int32)])
        throws(LapwingError) -> JobRecord
    {
        let r = try owned(id, by: uid)
        guard r.state == .interrupted || r.state == .failed || r.state == .cancelled else {
            throw LapwingError(.busy, "job \(id) is \(r.state.rawValue): only an interrupted, failed or cancelled job resumes from its checkpoint")
        }
        let checkpoint = store.directory(of: id) + "/" + Checkpoint.fileName
        guard FileManager.default.fileExists(atPath: checkpoint) else {
            throw LapwingError(.notFound, "job \(id) left no checkpoint to resume from", detail: "submit it again")
        }
        try SubmitCheck.files(files.map { ($0.role, $0.name) }, data: r.spec.data)
        var spec = r.spec
        spec.resumeFrom = checkpoint
        spec.dataNames = Dictionary(files.map { ($0.role, $0.name) }, uniquingKeysWith: { first, _ in first })
        try JobHost.preflight(spec)
        let result: Result<Void, LapwingError> = state.withLock { s in
            if s.shuttingDown { return .failure(LapwingError(.busy, "the daemon is shutting down")) }
            guard var q = s.records[id], q.state == r.state else {
                return .failure(LapwingError(.busy, "job \(id) changed while it was being resumed"))
            }
            q.spec = spec
            q.state = .queued
            q.reason = "resumed by uid \(uid) from its checkpoint"
            q.ended = nil
            q.summary = nil
            q.hostPID = nil
            q.hostStartTime = nil
            s.records[id] = q
            s.pendingFiles[id] = files.map { ($0.role, $0.fd) }
            return .success(())
        }
        try result.get()
        descriptors.keep(id, files.map { ($0.role, $0.fd) })
        try persist(id)
        log("job \(id) resumed by uid \(uid) from its checkpoint")
        schedule()
        return try status(id)
    }

    /// Pause and resume: the arena's state word and the record change together, under the
    /// lock, so that concurrent calls cannot leave them disagreeing; the record is then saved.
    private func setRunState(
        _ id: String, by uid: UInt32, from: JobRecord.State, to: JobRecord.State, arena states: (ArenaState, ArenaState)
    ) throws(LapwingError) -> JobRecord {
        let r = try owned(id, by: uid)
        guard r.state == from else {
            throw LapwingError(.busy, "job \(id) is \(r.state.rawValue), not \(from.rawValue)")
        }
        let changed: Result<Void, LapwingError> = state.withLock { s in
            guard let current = s.records[id] else { return .failure(Self.notFound(id)) }
            guard current.state == from else {
                return .failure(LapwingError(.busy, "job \(id) is \(current.state.rawValue), not \(from.rawValue)"))
            }
            let arena: Arena
            do throws(LapwingError) {
                arena = try Arena.attach(jobID: id)
            } catch {
                return .failure(
                    LapwingError(.busy, "job \(id) has no arena now (it is starting or ending)", detail: error.description))
            }
            guard arena.compareExchangeState(expected: states.0, desired: states.1) else {
                return .failure(LapwingError(.busy, "job \(id): its arena is \(arena.state?.description ?? "unreadable")"))
            }
            s.records[id]?.state = to
            s.records[id]?.reason = "\(to == .paused ? "paused" : "resumed") by uid \(uid)"
            return .success(())
        }
        try changed.get()
        log("job \(id) \(to == .paused ? "paused" : "resumed") by uid \(uid)")
        try persist(id)
        return try status(id)
    }

    /// Asks a running or paused job's host for a checkpoint now (SIGUSR1 to the host, named by
    /// pid and start time); the record's `checkpointed` moves once it is written.
    public func checkpoint(_ id: String, by uid: UInt32) throws(LapwingError) -> JobRecord {
        let r = try owned(id, by: uid)
        guard r.state == .running || r.state == .paused else {
            throw LapwingError(.busy, "job \(id) is \(r.state.rawValue): only a running or paused job writes a checkpoint")
        }
        let target: pid_t? = state.withLock { s in
            if let host = s.hosts[id] { return host.pid }
            if let host = s.detached[id], host.isAlive { return host.pid }
            return nil
        }
        guard let pid = target, kill(pid, SIGUSR1) == 0 else {
            throw LapwingError(.busy, "job \(id) has no job host now (it is starting, restarting or ending)")
        }
        log("job \(id): checkpoint requested by uid \(uid)")
        return try status(id)
    }

    public func cancel(_ id: String, by uid: UInt32) throws(LapwingError) -> JobRecord {
        let r = try owned(id, by: uid)
        switch r.state {
        case .queued:
            return try endUnstarted(id, .cancelled, reason: "cancelled by uid \(uid) before it started")
        case .running, .paused:
            let (host, detached) = state.withLock { ($0.hosts[id], $0.detached[id]) }
            _ = try update(id) { $0.reason = "cancelled by uid \(uid)" }
            log("job \(id) cancelled by uid \(uid) while \(r.state.rawValue): stopping its host")
            if r.state == .paused, let arena = try? Arena.attach(jobID: id) { arena.setState(.running) }
            host?.kill(SIGTERM)
            if let detached, detached.isAlive { kill(detached.pid, SIGTERM) }
            return try status(id)
        default:
            throw LapwingError(.busy, "job \(id) has already ended (\(r.state.rawValue))")
        }
    }

    /// The path of a finished or running job's exported model (owner or root only).
    public func modelPath(_ id: String, by uid: UInt32) throws(LapwingError) -> String {
        let r = try owned(id, by: uid)
        guard let path = r.summary?.modelPath, access(path, R_OK) == 0 else {
            throw LapwingError(.notFound, "job \(id) has no model yet (it is \(r.state.rawValue))")
        }
        return path
    }

    /// The evaluations of a job so far (JSON lines; owner or root only).
    public func metricsPath(_ id: String, by uid: UInt32) throws(LapwingError) -> String {
        let r = try owned(id, by: uid)
        let path = r.summary?.metricsPath ?? store.directory(of: id) + "/metrics.jsonl"
        guard access(path, R_OK) == 0 else {
            throw LapwingError(.notFound, "job \(id) has no metrics yet (it is \(r.state.rawValue))")
        }
        return path
    }

    /// The host's log (stderr) of a job.
    public func logPath(_ id: String, by uid: UInt32) throws(LapwingError) -> String {
        _ = try owned(id, by: uid)
        return store.directory(of: id) + "/host.log"
    }

    // MARK: Watching

    /// Calls `watcher` with every event of the job from now on; returns a token for `unwatch`.
    public func watch(_ id: String, _ watcher: @escaping Watcher) throws(LapwingError) -> Int {
        let token: Int? = state.withLock { s in
            guard s.records[id] != nil else { return nil }
            s.nextWatcher += 1
            s.watchers[id, default: [:]][s.nextWatcher] = watcher
            return s.nextWatcher
        }
        guard let token else { throw Self.notFound(id) }
        return token
    }

    public func unwatch(_ id: String, _ token: Int) {
        state.withLock { _ = $0.watchers[id]?.removeValue(forKey: token) }
    }

    /// Graceful shutdown: running jobs are interrupted (their hosts stop cleanly and write their
    /// model and summary), queued ones stay queued, and this waits up to `timeout` seconds.
    public func shutdown(timeout: Double) {
        let (hosts, detached): ([HostProcess], [String: HostIdentity]) = state.withLock { s in
            s.shuttingDown = true
            return (Array(s.hosts.values), s.detached)
        }
        if config.keepJobsOnExit {
            // The hosts train on (they ignore the broken event pipe); their records say
            // running, with the host's pid and start time, for the next daemon to re-attach.
            for id in state.withLock({ Array($0.hosts.keys) + Array($0.detached.keys) }) { try? persist(id) }
            log("leaving \(hosts.count + detached.count) running job(s) to the next daemon")
            return
        }
        for h in hosts {
            if let arena = try? Arena.attach(jobID: h.spec.id), arena.state == .paused { arena.setState(.running) }
            h.kill(SIGTERM)
        }
        for (id, h) in detached where h.isAlive {
            if let arena = try? Arena.attach(jobID: id), arena.state == .paused { arena.setState(.running) }
            kill(h.pid, SIGTERM)
        }
        let end = Date().addingTimeInterval(timeout)
        while Date() < end && state.withLock({ !$0.hosts.isEmpty || !$0.detached.isEmpty }) { usleep(20_000) }
        for h in state.withLock({ Array($0.hosts.values) }) { h.kill(SIGKILL) }
        while Date() < end.addingTimeInterval(2) && state.withLock({ !$0.hosts.isEmpty }) { usleep(20_000) }
    }

    // MARK: Helpers

    func owned(_ id: String, by uid: UInt32) throws(LapwingError) -> JobRecord {
        let r = try status(id)
        guard uid == 0 || uid == r.owner else {
            throw LapwingError(
                .permissionDenied, "job \(id) belongs to uid \(r.owner)",
                detail: "only its owner or root may change or export it")
        }
        return r
    }

    /// Changes a record in memory, then saves it (`persist`).
    @discardableResult
    func update(_ id: String, _ change: (inout JobRecord) -> Void) throws(LapwingError) -> JobRecord {
        let r: JobRecord? = state.withLock { s in
            guard var r = s.records[id] else { return nil }
            change(&r)
            s.records[id] = r
            return r
        }
        guard r != nil else { throw Self.notFound(id) }
        try persist(id)
        return try status(id)
    }

    /// Saves a job's record as it is now. One writer per record: saves of a job are serialised
    /// by its own lock, and each writes the record as it is when the lock is taken, so the last
    /// save to finish writes the latest state. A failed save is reported to the caller, logged,
    /// kept in the record (`saveError`, shown by status) and retried by `retryUnsaved`.
    func persist(_ id: String) throws(LapwingError) {
        let writer = writers.withLock { w in
            if let existing = w[id] { return existing }
            let made = RecordWriter()
            w[id] = made
            return made
        }
        try writer.lock.withLock { _ throws(LapwingError) in
            guard var r = state.withLock({ $0.records[id] }) else { return }
            r.saveError = nil
            do throws(LapwingError) {
                try store.save(r)
                state.withLock { s in
                    s.records[id]?.saveError = nil
                    s.unsaved.remove(id)
                }
            } catch {
                state.withLock { s in
                    s.records[id]?.saveError = error.description
                    s.unsaved.insert(id)
                }
                log("job \(id): its record could not be saved: \(error)")
                throw LapwingError(
                    error.code, "job \(id): its record could not be saved (the daemon keeps the change and retries)",
                    detail: error.description, errno: error.errno)
            }
        }
    }

    /// Saves again the records whose last save failed (the scheduler calls this every second).
    public func retryUnsaved() {
        for id in state.withLock({ Array($0.unsaved) }) { try? persist(id) }
    }

    /// Ends a job that never started (cancelled in the queue, or refused at admission): its
    /// descriptors are closed, its record saved, and its watchers get the final word.
    func endUnstarted(_ id: String, _ end: JobRecord.State, reason: String) throws(LapwingError) -> JobRecord {
        closePending(id)
        let r = try update(id) {
            $0.state = end
            $0.reason = reason
            $0.ended = Date().timeIntervalSince1970
        }
        var event = HostEvent(.finished, job: id)
        event.error = reason
        notify(id, event, final: true)
        log("job \(id) \(end.rawValue) before it started: \(reason)")
        return r
    }

    func closePending(_ id: String) {
        let files = state.withLock { $0.pendingFiles.removeValue(forKey: id) } ?? []
        for f in files { close(f.fd) }
        descriptors.drop(id, roles: files.map(\.role))
    }

    static func notFound(_ id: String) -> LapwingError { LapwingError(.noSuchJob, "job \(id): no such job") }
}
