import Foundation
import LapwingArena
import LapwingCore
import LapwingEngine
import LapwingJob

#if canImport(Glibc)
import Glibc
#endif

/// Admission (free cores, free /dev/shm), launching job hosts and supervising them.
extension JobManager {
    // MARK: Scheduling and supervision

    /// Starts queued jobs while they fit in the free cores (a job larger than the machine
    /// runs alone) and their arenas in the free /dev/shm, within their owners' caps
    /// (`DaemonSettings`): among the jobs whose owner is under its caps, the least-served
    /// owner's job goes first (fair share: core-seconds in the window), by priority then age;
    /// else by priority then age. A job held by a cap says which. With CountOtherLoad, the cores
    /// that other processes keep busy (`OtherLoad`) are not free. A job whose arena does not fit
    /// waits while other jobs run (their arenas go when they end) and fails when none does.
    public func schedule() {
        let settings = self.settings.withLock { $0 }
        let load = otherLoad.withLock { $0.busyCores(of: config.cores) }
        while true {
            var unfit: (id: String, reason: String)?
            var waiting: [String] = []
            let next: (JobRecord, [(role: String, fd: Int32)])? = state.withLock { s in
                /// A job waits; its reason is saved when it changes, not on every pass.
                func wait(_ id: String, _ reason: String, _ s: inout State) {
                    guard var q = s.records[id], q.reason != reason else { return }
                    q.reason = reason
                    s.records[id] = q
                    waiting.append(id)
                }
                guard !s.shuttingDown else { return nil }
                let busy = s.records.values.filter { $0.state == .running || $0.state == .paused }
                let used = busy.reduce(0) { $0 + $1.spec.workers }
                let queued = s.order.compactMap { s.records[$0] }.filter { $0.state == .queued }
                guard !queued.isEmpty else { return nil }
                let pick = Self.choose(queued, busy: busy, all: Array(s.records.values), settings: settings, numaNodes: numaNodes)
                for (id, reason) in pick.held { wait(id, reason, &s) }
                guard let r = pick.next else { return nil }
                let id = r.id
                if settings.countOtherLoad && load == nil {
                    wait(id, "waiting for a first measurement of the load of other processes (CountOtherLoad in [Scheduling])", &s)
                    return nil
                }
                // A job larger than the machine runs alone, on a machine no one else keeps busy.
                let others = settings.countOtherLoad ? load ?? 0 : 0
                let free = config.cores - used - others
                guard min(r.spec.workers, config.cores) <= free else {
                    let n = r.spec.workers
                    let why = others == 0 ? "" : "; other processes keep \(others) \(others == 1 ? "core" : "cores") busy, CountOtherLoad in [Scheduling]"
                    wait(id, "waiting for \(n) free \(n == 1 ? "core" : "cores") (\(max(0, free)) free\(why))", &s)
                    return nil
                }
                if let need = r.spec.arenaBytes(numaNodes: numaNodes), let space = try? Arena.sharedMemorySpace(),
                    UInt64(need) > space.available
                {
                    let free = formatBytes(Int(clamping: space.available))
                    if busy.isEmpty {
                        unfit = (id, "its arena needs \(formatBytes(need)) of /dev/shm and only \(free) is free")
                    } else {
                        wait(id, "waiting for \(formatBytes(need)) of /dev/shm (\(free) free)", &s)
                    }
                    return nil
                }
                var started = r
                started.state = .running
                started.reason = nil
                started.started = Date().timeIntervalSince1970
                metrics.recordQueueWait(started.started! - r.submitted)
                s.records[id] = started
                return (started, s.pendingFiles.removeValue(forKey: id) ?? [])
            }
            for id in waiting { try? persist(id) }
            if let unfit {
                _ = try? endUnstarted(unfit.id, .failed, reason: unfit.reason)
                continue
            }
            guard let (record, files) = next else { return }
            launch(record, files)
        }
    }

    /// Starts the job's host. The data descriptors stay held until the job ends, so that a host
    /// that dies can be started again from the job's checkpoint (`restartHost`).
    func launch(_ record: JobRecord, _ files: [(role: String, fd: Int32)]) {
        state.withLock { $0.heldFiles[record.id] = files }
        let host: HostProcess
        do {
            host = try HostProcess(
                executable: config.hostExecutable, arguments: ["job-host"], spec: record.spec, descriptors: files,
                stderrPath: store.directory(of: record.id) + "/host.log"
            ) { pid in placeInCgroup(pid, job: record.id) }
        } catch {
            _ = try? update(record.id) {
                $0.state = .failed
                $0.reason = "could not start its job host: \(error)"
                $0.ended = Date().timeIntervalSince1970
            }
            releaseFiles(record.id)
            return
        }
        state.withLock { $0.hosts[record.id] = host }
        _ = try? update(record.id) {
            $0.hostPID = host.pid
            $0.hostStartTime = HostIdentity.startTime(of: host.pid)
            $0.cgroup = config.jobCgroups.map { $0.unitPath(of: record.id) }
        }
        log("job \(record.id) started: host pid \(host.pid)")
        let thread = Thread { [self] in supervise(record.id, host) }
        thread.name = "supervise-\(record.id)"
        thread.start()
    }

    /// Reads the host's events until it ends, then records the outcome.
    func supervise(_ id: String, _ host: HostProcess) {
        let oomBefore = OOMKills.count()
        var summary: JobSummary?
        var failure: String?
        var began = false
        var lastSave = 0.0
        while let events = host.events(timeout: 0.5) {
            for e in events {
                switch e.event {
                case .started:
                    began = true
                    state.withLock { s in s.records[id]?.dataCopies = e.started?.dataCopies }
                case .progress, .evaluation:
                    let now = Date().timeIntervalSince1970
                    state.withLock { s in s.records[id]?.progress = e }
                    if e.event == .evaluation || now - lastSave > 5 {
                        lastSave = now
                        try? persist(id)
                    }
                case .rendezvous:
                    state.withLock { s in s.records[id]?.machineMeeting = e.machineMeeting }
                    try? persist(id)
                case .finished: summary = e.summary
                case .failed: failure = e.error
                }
                notify(id, e)
            }
            noteAccounting(id)
        }
        let status = host.wait() ?? 0
        if summary?.diverged == true {
            state.withLock { _ = $0.hosts.removeValue(forKey: id) }
            if backOff(id, after: summary) { return }
        }
        var oom = false
        if summary == nil && failure == nil {
            JobHost.cleanUpAfterLostHost(host.spec)
            failure = "the job host \(describeWaitStatus(status))"
            if let before = oomBefore, let after = OOMKills.count(), after > before, status & 0x7f == SIGKILL {
                failure = "the job host was killed by the OOM killer (\(describeWaitStatus(status)))"
                oom = true
            }
            state.withLock { _ = $0.hosts.removeValue(forKey: id) }
            if !oom, let why = failure, restartHost(id, after: why, didWork: began) { return }
        }
        conclude(id, summary: summary, failure: failure)
        state.withLock { _ = $0.hosts.removeValue(forKey: id) }
        releaseFiles(id)
        removeCgroup(id)
        schedule()
    }

    /// Moves a new job host into its job's control group (when the daemon has delegated ones);
    /// a failure leaves the job in the daemon's own group, with a line in the log.
    func placeInCgroup(_ pid: pid_t, job id: String) {
        guard let groups = config.jobCgroups else { return }
        do throws(LapwingError) {
            try groups.place(pid, job: id)
        } catch {
            log("job \(id): could not give it its own control group (\(error)); it runs in the daemon's")
        }
    }

    /// Records the CPU time of the job's control group so far, the memory its processes hold
    /// (its group's, else their proportional set sizes), and when its latest checkpoint was written.
    func noteAccounting(_ id: String) {
        let seconds = config.jobCgroups?.cpuSeconds(of: id)
        // Memory every 2 s at most: without a control group it takes a pass over /proc.
        let now = ProcessInfo.processInfo.systemUptime
        let (due, host): (Bool, Int32?) = state.withLock { s in
            let due = now - (s.memorySampled[id] ?? -.infinity) >= 2
            if due { s.memorySampled[id] = now }
            return (due, s.hosts[id]?.pid ?? s.detached[id]?.pid)
        }
        var memory = due ? config.jobCgroups?.memoryBytes(of: id) : nil
        if due, memory == nil, let host {
            memory = ProcessMemory.proportionalBytes(of: ProcessTree.scan().members(under: host))
        }
        var st = stat()
        let written = stat(store.directory(of: id) + "/" + Checkpoint.fileName, &st) == 0
            ? Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9 : nil
        state.withLock { s in
            if let seconds { s.records[id]?.cpuSeconds = seconds }
            if let memory { s.records[id]?.memoryBytes = memory }
            if let written { s.records[id]?.checkpointed = written }
        }
    }

    /// Once a job has ended: its CPU time goes into its record, anything still in its control
    /// group is killed, and the group is removed.
    func removeCgroup(_ id: String) {
        guard let groups = config.jobCgroups else { return }
        if let seconds = groups.cpuSeconds(of: id) { _ = try? update(id) { $0.cpuSeconds = seconds } }
        do throws(LapwingError) {
            let killed = try groups.remove(job: id)
            if killed > 0 { log("job \(id): killed \(killed) process(es) left in its control group after it ended") }
        } catch {
            log("job \(id): could not remove its control group: \(error)")
        }
    }

    /// Starts a new host for a job whose host died (not cancelled, not by the OOM killer), from
    /// the job's checkpoint, where its algorithm resumes, unless it is in a crash loop
    /// (`JobHost.maxRestarts` deaths in a row before training); false when it cannot (the job
    /// then fails with the host's death).
    func restartHost(_ id: String, after death: String, didWork: Bool) -> Bool {
        guard let r = try? status(id), r.reason?.hasPrefix("cancelled") != true else { return false }
        let checkpoint = store.directory(of: id) + "/" + Checkpoint.fileName
        let count = (r.hostRestarts ?? 0) + 1
        var spec = r.spec
        // From the checkpoint; a host that died before the first one starts the job afresh.
        let resume = FileManager.default.fileExists(atPath: checkpoint)
        spec.resumeFrom = resume ? checkpoint : nil
        // A crash loop (deaths in a row, each before the host started training) ends the
        // restarts; a host that had started its workers starts the count again.
        let (files, inARow): ([(role: String, fd: Int32)]?, Int) = state.withLock { s in
            let n = didWork ? 0 : (s.hostQuickDeaths[id] ?? 0) + 1
            s.hostQuickDeaths[id] = n
            return (s.shuttingDown ? nil : s.heldFiles[id], n)
        }
        guard let files, inARow <= JobHost.maxRestarts, (try? Algorithms.checkResumable(spec)) != nil,
            files.allSatisfy({ lseek($0.fd, 0, SEEK_SET) == 0 })  // each host reads its data from the start
        else { return false }
        let restarted = try? update(id) {
            $0.spec = spec
            $0.hostRestarts = count
            $0.reason = "\(death); restarted \(resume ? "from its checkpoint" : "afresh, before any checkpoint") (restart \(count))"
        }
        guard let restarted else { return false }
        log("job \(id): \(death); restarting its host from its checkpoint (restart \(count))")
        launch(restarted, files)
        return true
    }

    /// `--on-divergence backoff`: a job whose training diverged goes on with half the learning
    /// rate, from its last checkpoint (`JobHost.backoff`); false when it fails instead.
    func backOff(_ id: String, after summary: JobSummary?) -> Bool {
        guard let r = try? status(id), r.reason?.hasPrefix("cancelled") != true else { return false }
        let done = r.divergenceBackoffs ?? 0
        let checkpoint = store.directory(of: id) + "/" + Checkpoint.fileName
        guard let next = JobHost.backoff(r.spec, after: summary, checkpoint: checkpoint, done: done) else { return false }
        let files = state.withLock { s in s.shuttingDown ? nil : s.heldFiles[id] }
        guard let files, files.allSatisfy({ lseek($0.fd, 0, SEEK_SET) == 0 }) else { return false }
        let why = JobHost.describeBackoff(next, count: done + 1, of: r.spec.divergenceBackoffs ?? 0)
        let updated = try? update(id) {
            $0.spec = next
            $0.divergenceBackoffs = done + 1
            $0.reason = why
        }
        guard let updated else { return false }
        log("job \(id): \(why)")
        launch(updated, files)
        return true
    }

    /// Closes the data descriptors a job held (and forgets when its memory was measured).
    func releaseFiles(_ id: String) {
        let files: [(role: String, fd: Int32)] = state.withLock { s in
            s.memorySampled[id] = nil
            return s.heldFiles.removeValue(forKey: id) ?? []
        }
        for f in files { close(f.fd) }
        descriptors.drop(id, roles: files.map(\.role))
    }

    /// Watches a host that an earlier daemon started (re-attached by pid and start time): its
    /// progress from the arena's counters, its end from its identity, and its outcome from the
    /// summary.json it writes into the job's directory.
    func superviseDetached(_ id: String, _ host: HostIdentity) {
        let begun = Date().timeIntervalSince1970
        let spec = (try? status(id))?.spec
        // samples/s over the last few seconds of the arena's counters.
        var window: [(Double, Int)] = []
        while host.isAlive {
            if let spec, let arena = try? Arena.attach(jobID: id) {
                var samples: UInt64 = 0
                for w in 0..<spec.workers { samples &+= arena.slot(w).samples }
                let now = Date().timeIntervalSince1970
                window.append((now, Int(truncatingIfNeeded: samples)))
                if window.count > 10 { window.removeFirst() }
                var e = HostEvent(.progress, job: id)
                e.samples = Int(truncatingIfNeeded: samples)
                e.elapsed = now - ((try? status(id))?.started ?? begun)
                if let first = window.first, now - first.0 > 0.2 {
                    e.samplesPerSecond = Double(max(0, e.samples! - first.1)) / (now - first.0)
                }
                state.withLock { s in s.records[id]?.progress = e }
                notify(id, e)
            }
            noteAccounting(id)
            usleep(500_000)
        }
        let summary = Self.readSummary(store.directory(of: id))
        state.withLock { _ = $0.detached.removeValue(forKey: id) }
        if summary?.diverged == true, backOff(id, after: summary) { return }
        if summary == nil, let spec {
            JobHost.cleanUpAfterLostHost(spec)
            if restartHost(id, after: "its job host (pid \(host.pid)) died", didWork: true) { return }
        }
        conclude(id, summary: summary, failure: summary == nil ? "its job host (pid \(host.pid)) ended without a summary" : nil)
        releaseFiles(id)
        removeCgroup(id)
        schedule()
    }

    /// Records a job's outcome (kept in memory even if it cannot be saved now: persist retries)
    /// and tells its watchers.
    func conclude(_ id: String, summary: JobSummary?, failure: String?) {
        _ = try? update(id) { r in
            r.ended = Date().timeIntervalSince1970
            Self.apply(summary: summary, failure: failure, to: &r)
        }
        let record = try? self.status(id)
        var end = HostEvent(.finished, job: id)
        end.summary = summary
        end.error = record?.state == .succeeded ? nil : (record?.reason ?? failure)
        notify(id, end, final: true)
        enforceRetention()
        log("job \(id) ended: \(record?.state.rawValue ?? "?")\(record?.reason.map { " (\($0))" } ?? "")")
    }

    /// The state a summary (or, without one, a failure) gives a record.
    static func apply(summary: JobSummary?, failure: String?, to r: inout JobRecord) {
        r.summary = summary
        let cancelled = r.reason?.hasPrefix("cancelled") == true
        if let summary {
            switch summary.outcome {
            case "completed":
                r.state = .succeeded
                r.reason = nil
            case "interrupted":
                r.state = cancelled ? .cancelled : .interrupted
                if !cancelled { r.reason = "stopped: \(summary.reason ?? "signal")" }
            default:
                r.state = .failed
                r.reason = summary.reason
            }
        } else {
            r.state = cancelled ? .cancelled : .failed
            if !cancelled { r.reason = failure }
        }
    }

    func notify(_ id: String, _ e: HostEvent, final: Bool = false) {
        let watchers: [Watcher] = state.withLock { s in
            let w = Array((s.watchers[id] ?? [:]).values)
            if final { s.watchers[id] = nil }
            return w
        }
        for w in watchers { w(e, final) }
    }
}
