import CLapwing
import Foundation
import LapwingCore
import LapwingData
import LapwingJob
import LapwingModels
import LapwingTopology

#if canImport(Glibc)
import Glibc
#endif

/// The process that owns one job (design section 2). Single-threaded until its children are
/// forked: it sets up BLAS, loads the data once, creates the arena, forks the workers and the
/// averager, then watches them, evaluates the averaged model at intervals without stopping
/// anyone, and at the end writes the model, the metrics and the summary and removes the arena.
public enum JobHost {
    /// Host exit codes.
    public static let exitCompleted: Int32 = 0
    public static let exitFailed: Int32 = 1
    public static let exitInterrupted: Int32 = 3
    /// Deaths in a row, each before the process did any work, after which a process of a job (a
    /// worker, the coordinator) or a job host is no longer replaced: a crash loop.
    public static let maxRestarts = 3

    /// One worker per physical core the process may use.
    public static func defaultWorkerCount() -> Int {
        (try? Topology.current().cores.count).map { max(1, $0) } ?? 1
    }

    /// Checks what can be checked before anything starts: the spec's fields and that its data
    /// and model strings parse.
    public static func preflight(_ spec: JobSpec) throws(LapwingError) {
        try spec.validate()
        try Algorithms.check(spec)
        try Algorithms.checkResumable(spec)
        _ = try DataSpec.parse(spec.data)
        _ = try ModelSpec.parse(spec.model)
    }

    /// Removes what a host that died without cleaning up leaves behind (its arena). Its
    /// children die with it (PR_SET_PDEATHSIG).
    public static func cleanUpAfterLostHost(_ spec: JobSpec) {
        SharedState.remove(jobID: spec.id)
    }

    /// Runs the job, reporting events through `emit`; returns the process exit code.
    public static func run(_ spec: JobSpec, emit events: @escaping (HostEvent) -> Void) -> Int32 {
        // Every event but progress also goes into the host's log (stderr).
        let emit: (HostEvent) -> Void = { e in
            if let line = HostLog.line(for: e, spec: spec) { HostLog.write(spec.id, line) }
            events(e)
        }
        _ = lw_install_stop_handlers()
        _ = lw_install_checkpoint_handler()
        _ = lw_set_process_name("lw-host")
        _ = lw_flush_denormals()  // before the fork: workers and the averager inherit it
        leaveLauncherGroup(spec)
        do {
            var run = try JobRun(spec: spec, emit: emit)
            return run.execute()
        } catch {
            let sig = lw_stop_signal()
            if sig != 0 {
                // Told to stop while setting up (most often while waiting for data from a pipe
                // or a FIFO): the job was interrupted, not broken.
                // A read that the signal ended says so itself ("DATA: stopped by signal 15 ... while reading").
                let stoppedReading = error.code == .system && error.errno == EINTR
                var done = HostEvent(.finished, job: spec.id)
                done.summary = JobSummary(
                    stoppedBeforeTraining: spec,
                    reason: stoppedReading
                        ? error.message
                        : "signal \(sig) (\(String(cString: strsignal(sig)))) before training: \(error.description)")
                emit(done)
                return exitInterrupted
            }
            var e = HostEvent(.failed, job: spec.id)
            e.error = error.description
            emit(e)
            return exitFailed
        }
    }
}

/// The state of one running job inside its host.
struct JobRun {
    let spec: JobSpec
    let algorithm: any TrainingAlgorithm
    let compression: Compression?
    let emit: (HostEvent) -> Void
    let data: TrainingData
    /// Per-node copies of the training set (`--node-data`); nil: the workers read `data.train`.
    let dataCopies: NodeDataCopies?
    let model: FeedForwardModel
    let placement: Placement
    let shared: SharedState
    let blas: BLASChoice
    let totalSamples: Int
    let children = ChildProcesses()
    /// Replacements of each process that died (by role), for the summary.
    var restarts: [String: Int] = [:]
    /// Deaths in a row of each role before it did any work, and each role's work count
    /// (steps of a worker, rounds of the coordinator) when its current process started.
    var quickDeaths: [String: Int] = [:]
    var progressAtSpawn: [String: Int] = [:]
    /// Whether the running coordinator may be replaced (noted when it was forked).
    var coordinatorReplaceable = false
    /// The OOM kills of the host's memory cgroup when it started (nil: none to ask).
    let oomKillsAtStart = OOMKills.count()
    var metrics: FileWriter?
    /// Rank 0's ompi-server of a job across machines started without a launcher (`Rendezvous`).
    var rendezvousServer: RendezvousServer?
    /// The coordinator's slot in the arena (after the workers').
    var coordinatorSlot: Int { spec.workers }

    init(spec: JobSpec, emit: @escaping (HostEvent) -> Void) throws(LapwingError) {
        try spec.validate()
        algorithm = try Algorithms.resolve(spec)
        try Algorithms.checkResumable(spec)
        compression = try Algorithms.compression(spec)
        self.spec = spec
        self.emit = emit
        blas = try BLAS.setUp()
        let loaded = try TrainingData.load(spec)
        let modelSpec = try ModelSpec.parse(spec.model)
        try modelSpec.checkLabels(of: loaded.train)
        model = try FeedForwardModel(spec: modelSpec, features: loaded.train.cols, classes: loaded.classes)
        let topology = try Topology.current()
        let replicas = try algorithm.replicaCount(numaNodes: topology.workerNodeCount(workers: spec.workers))
        try Compressors.checkFits(compression, dimension: model.parameterCount, participants: replicas)
        placement = try topology.place(workers: spec.workers, replicas: replicas)
        let (id, hostNode) = (spec.id, placement.host.node)
        dataCopies = try NodeDataCopies.make(of: loaded.train, for: placement, mode: spec.nodeData, jobID: id) { HostLog.write(id, $0) }
        // With copies, the host reads its node's too, and the loaded rows are freed.
        data = dataCopies.map { loaded.reading($0.data(forNode: hostNode)) } ?? loaded
        totalSamples = max(1, Int((spec.epochs * Double(data.epochRows)).rounded()))
        shared = try SharedState(
            jobID: spec.id, parameterCount: model.parameterCount,
            replicaNodes: placement.replicas.map { Int32($0.node) }, workers: spec.workers,
            needs: Algorithms.arenaNeeds(algorithm, spec: spec, replicas: placement.replicas.count),
            workerReplicas: placement.workers.sorted { $0.worker < $1.worker }.map(\.replica))
        if let dir = spec.outputDir {
            let path = dir + "/metrics.jsonl"
            // A resumed job adds its evaluations to those before the checkpoint.
            let keep = spec.resumeFrom != nil ? O_APPEND : O_TRUNC
            let fd = try syscall("open", object: path) { open(path, O_WRONLY | O_CREAT | keep | O_CLOEXEC, 0o644) }
            metrics = FileWriter(fd: fd, path: path)
        }
    }

    mutating func execute() -> Int32 {
        defer {
            if let m = metrics { close(m.fd) }
            shared.remove()
        }
        let x0 = shared.replica(0)
        model.initialize(UnsafeMutableBufferPointer(start: x0, count: model.parameterCount), seed: spec.seed)
        for r in 1..<max(1, placement.replicas.count) { shared.replica(r).update(from: x0, count: model.parameterCount) }
        var resumedAt = 0
        if let path = spec.resumeFrom {
            do throws(LapwingError) {
                resumedAt = try Checkpoint.restore(from: path, into: shared, spec: spec, replicas: placement.replicas.count)
            } catch {
                return fail(error.description)
            }
        }
        try? pinCurrentProcess(toCPU: placement.host.cpu)
        shared.setPID(slot: spec.workers + 1, getpid())

        let t0 = monotonicSeconds()
        var outcome = "completed"
        var reason: String?
        var diverged = false
        do throws(LapwingError) {
            try startChildren()
        } catch {
            children.stopAll(grace: 0)
            rendezvousServer?.stop()
            return fail(error.description)
        }
        var started = HostEvent(.started, job: spec.id)
        started.started = StartedInfo(
            arena: shared.name, host: getpid(),
            workers: children.children.filter { $0.role.hasPrefix("worker") }.map(\.pid),
            workerCPUs: placement.workers.map(\.cpu),
            averager: children.children.first { !$0.isWorker && $0.role != MachineBridge.role }?.pid, replicas: placement.replicas.count,
            replicaNodes: placement.replicas.map { Int32($0.node) }, parameters: model.parameterCount,
            trainRows: data.trainRows.count, testRows: data.testRows.count, blas: blas.corename)
        started.started?.dataCopies = dataCopies?.report
        emit(started)

        let evaluator = Evaluator(model: model, data: data, replicas: placement.replicas.count, shared: shared)
        defer { evaluator.deallocate() }
        let evalStep = spec.evalEvery > 0 ? max(1, Int(spec.evalEvery * Double(data.epochRows))) : Int.max
        var nextEval = evalStep == Int.max ? evalStep : (resumedAt / evalStep + 1) * evalStep
        let checkpointEvery = spec.checkpointEvery ?? JobSpec.defaultCheckpointEvery
        var lastCheckpoint = t0
        var lastProgress = t0
        var window: [(Double, Int)] = [(t0, resumedAt)]

        // Watch until every worker has finished its share, a child fails, or we are told to stop.
        while true {
            var ts = timespec(tv_sec: 0, tv_nsec: 20_000_000)
            nanosleep(&ts, nil)
            if lw_stop_signal() != 0 {
                outcome = "interrupted"
                reason = "signal \(lw_stop_signal()) (\(String(cString: strsignal(lw_stop_signal()))))"
                break
            }
            let failed = children.reap().filter { $0.status.map { $0 != 0 } ?? false }
            var why: String?
            for f in failed where why == nil { why = replace(f) }
            if let why {
                outcome = "failed"
                reason = why
                break
            }
            if let why = divergence(evaluator: nil) {
                (outcome, reason, diverged) = ("failed", why, true)
                break
            }
            if machinesDone {
                if let why = endedByAnotherMachine { (outcome, reason) = ("interrupted", why) }
                break
            }
            let now = monotonicSeconds()
            let samples = shared.totalSamples()
            if samples >= nextEval && samples < totalSamples {
                emitEvaluation(evaluator.evaluate(consistent: false), samples: samples, elapsed: now - t0)
                while nextEval <= samples { nextEval += evalStep }
                if let why = divergence(evaluator: evaluator) {
                    (outcome, reason, diverged) = ("failed", why, true)
                    break
                }
            }
            if lw_take_checkpoint_request() != 0 || (checkpointEvery > 0 && now - lastCheckpoint >= checkpointEvery) {
                lastCheckpoint = now
                writeCheckpoint(evaluator)
            }
            if now - lastProgress >= 0.25 {
                lastProgress = now
                window.append((now, samples))
                if window.count > 12 { window.removeFirst() }
                let rate = Double(samples - window[0].1) / max(1e-9, now - window[0].0)
                emitProgress(.progress, samples: samples, elapsed: now - t0, rate: rate)
            }
            if (children.running.allSatisfy({ !$0.isWorker }) || samples >= totalSamples) && !awaitsOtherMachines { break }
        }
        shared.requestStop()
        if let why = finishMachineLevel(), reason == nil { (outcome, reason) = ("failed", why) }
        rendezvousServer?.stop()
        children.stopAll(grace: 5)
        let seconds = monotonicSeconds() - t0
        let samples = shared.totalSamples()
        let final = evaluator.evaluate(consistent: true)
        emitEvaluation(final, samples: samples, elapsed: seconds)
        if !diverged { writeCheckpoint(evaluator) }
        if !diverged && outcome != "failed", let why = divergence(evaluator: evaluator) {
            (outcome, reason, diverged) = ("failed", why, true)
        }

        var modelPath: String?
        if let dir = spec.outputDir, !diverged {
            let path = dir + "/model.safetensors"
            do throws(LapwingError) {
                try evaluator.writeModel(to: path, spec: spec, accuracy: final.accuracy)
                modelPath = path
            } catch {
                outcome = "failed"
                reason = error.description
            }
        }
        let rounds = shared.roundStats(slot: coordinatorSlot)
        let exchanged = shared.bytesExchanged()
        var summary = JobSummary(
            job: spec.id, outcome: outcome, reason: reason, algorithm: spec.algorithm.name, model: spec.model,
            data: spec.data, workers: spec.workers, replicas: placement.replicas.count, batch: spec.batch,
            epochs: Double(samples) / Double(data.epochRows), samples: samples, trainSeconds: seconds,
            samplesPerSecond: Double(samples) / max(seconds, 1e-9),
            testAccuracy: model.isClassifier ? final.accuracy : nil, testLoss: final.meanLoss.finiteOrNil,
            trainLoss: shared.meanLoss(workers: spec.workers), testRows: data.testRows.count,
            averagingRounds: rounds.rounds, averagingBytes: exchanged.bytes, averagingSeconds: rounds.seconds,
            bytesExchanged: exchanged.bytes, crossNodeBytes: exchanged.crossNode,
            knobs: (try? Knobs(spec.algorithm, declared: type(of: algorithm).knobs))?.values,
            compression: compression?.config.description, restarts: restarts.values.reduce(0, +), blas: blas.corename, modelPath: modelPath, metricsPath: spec.outputDir.map { $0 + "/metrics.jsonl" })
        summary.diverged = diverged ? true : nil
        addMachineLevel(to: &summary)
        if let dir = spec.outputDir {
            try? AtomicFile.write(to: dir + "/summary.json", bytes: Array((HostEvent.jsonString(summary) + "\n").utf8))
        }
        if var m = metrics {
            try? m.flush()
            fsync(m.fd)
        }
        var done = HostEvent(.finished, job: spec.id)
        done.summary = summary
        emit(done)
        switch outcome {
        case "completed": return JobHost.exitCompleted
        case "interrupted": return JobHost.exitInterrupted
        default: return JobHost.exitFailed
        }
    }

    /// Forks the workers, then the algorithm's coordinator if it has one.
    mutating func startChildren() throws(LapwingError) {
        algorithm.configureBarriers(
            shared, replicaWorkers: placement.replicas.map(\.workers), replicaNodes: placement.replicas.map { Int32($0.node) })
        try startMachineLevel()
        for w in placement.workers { try spawnWorker(w.worker, incarnation: 0) }
        try spawnCoordinator()
    }

    /// Forks worker `index` on its CPU (`incarnation` > 0: a replacement, with a fresh order).
    mutating func spawnWorker(_ index: Int, incarnation: Int) throws(LapwingError) {
        guard let w = placement.workers.first(where: { $0.worker == index }) else { return }
        var context = WorkerContext(
            index: w.worker, replica: w.replica, spec: spec, shared: shared, replicaWorkers: placement.replicas.map(\.workers),
            replicaNodes: placement.replicas.map { Int32($0.node) }, totalSamples: totalSamples, parameterCount: model.parameterCount)
        context.workerNodes = placement.workers.sorted { $0.worker < $1.worker }.map { Int32($0.node) }
        context.compression = compression
        context.incarnation = incarnation
        context.machineBarrier = Algorithms.machineBarrier(algorithm, spec: spec, replicas: placement.replicas.count)
        let worker = Worker(
            context: context, algorithm: algorithm, model: model, data: dataCopies?.data(forNode: w.node) ?? data.train,
            trainRows: data.trainRows)
        let pid = try children.spawn(role: "worker-\(w.worker)", cpu: w.cpu) {
            worker.run()
            return 0
        }
        shared.setPID(slot: w.worker, pid)
        progressAtSpawn["worker-\(w.worker)"] = progress(of: "worker-\(w.worker)")
    }

    /// Forks the algorithm's coordinator, if it has one, and notes whether it may be replaced.
    mutating func spawnCoordinator() throws(LapwingError) {
        var context = CoordinatorContext(
            spec: spec, shared: shared, replicaWorkers: placement.replicas.map(\.workers),
            replicaNodes: placement.replicas.map { Int32($0.node) }, slot: coordinatorSlot, node: Int32(placement.averager.node),
            totalSamples: totalSamples, parameterCount: model.parameterCount)
        context.compression = compression
        guard var coordinator = algorithm.coordinator(context) else { return }
        let pid = try children.spawn(role: coordinator.role, cpu: placement.averager.cpu) {
            coordinator.run()
            return 0
        }
        shared.setPID(slot: coordinatorSlot, pid)
        progressAtSpawn[coordinator.role] = progress(of: coordinator.role)
        coordinatorReplaceable = coordinator.canBeReplaced
    }

    /// Writes the job's checkpoint into its output directory (if it has one); a failure is
    /// logged, and training goes on. A model that is diverging is never checkpointed: the
    /// previous checkpoint stays, for `--on-divergence backoff` to go on from.
    func writeCheckpoint(_ evaluator: Evaluator) {
        guard let dir = spec.outputDir else { return }
        if shared.divergedWorker() != nil || evaluator.firstNonFiniteParameter() != nil {
            HostLog.write(spec.id, "checkpoint not written: the training is diverging")
            return
        }
        do throws(LapwingError) {
            try Checkpoint.write(shared, spec: spec, replicas: placement.replicas.count, to: dir + "/" + Checkpoint.fileName)
            HostLog.write(spec.id, "checkpoint written at \(shared.totalSamples()) samples")
        } catch {
            HostLog.write(spec.id, "checkpoint not written: \(error)")
        }
    }

    /// A role's work so far: a worker's steps, the coordinator's rounds.
    func progress(of role: String) -> Int {
        if role.hasPrefix("worker-"), let w = Int(role.dropFirst("worker-".count)) { return shared.counters(slot: w).steps }
        return shared.roundStats(slot: coordinatorSlot).rounds
    }

    /// Replaces a child that died, if its algorithm allows it and it has not died too often;
    /// returns why not otherwise (the job then fails with that reason).
    mutating func replace(_ child: ChildProcesses.Child) -> String? {
        if let machine = spec.machine, child.role == MachineBridge.role { return MachineBridge.describeLoss(child, machine: machine) }
        let died = "\(child.role) (pid \(child.pid)) \(describeWaitStatus(child.status ?? 0))"
        if (child.status ?? 0) & 0x7f == SIGKILL, let before = oomKillsAtStart, let now = OOMKills.count(), now > before {
            // Another process like it would be killed again: the job needs more memory.
            return "\(child.role) (pid \(child.pid)) was killed by the OOM killer (\(describeWaitStatus(child.status ?? 0)))"
        }
        let count = (restarts[child.role] ?? 0) + 1
        // Dying before doing any work, again and again, is a crash loop: the limit counts those
        // deaths in a row; a process that had trained a step (or run a round) starts it again.
        let quick = progress(of: child.role) == (progressAtSpawn[child.role] ?? -1)
        let inARow = quick ? (quickDeaths[child.role] ?? 0) + 1 : 0
        let replaceable =
            child.isWorker
            ? type(of: algorithm).workersCanBeReplaced
            : coordinatorReplaceable
        guard replaceable else {
            return child.isWorker
                ? "\(died); \(spec.algorithm.name)'s workers wait for each other, so a worker cannot be replaced mid-job"
                : "\(died); \(spec.algorithm.name)'s \(child.role) keeps state of its own and cannot be replaced mid-job"
        }
        guard inARow <= JobHost.maxRestarts else {
            return "\(died), the \(inARow)th time in a row before it did any work (a crash loop)"
        }
        restarts[child.role] = count
        quickDeaths[child.role] = inARow
        do throws(LapwingError) {
            if child.isWorker, let index = Int(child.role.dropFirst("worker-".count)) {
                try spawnWorker(index, incarnation: count)
            } else {
                try spawnCoordinator()
            }
        } catch {
            return "\(died), and its replacement could not start: \(error)"
        }
        HostLog.write(spec.id, "\(died); replaced (\(count) so far)")
        return nil
    }

    mutating func emitProgress(_ kind: HostEvent.Kind, samples: Int, elapsed: Double, rate: Double) {
        var e = HostEvent(kind, job: spec.id)
        e.elapsed = elapsed
        e.samples = samples
        e.epoch = Double(samples) / Double(data.epochRows)
        e.epochs = spec.epochs
        e.samplesPerSecond = rate
        e.trainLoss = shared.meanLoss(workers: spec.workers)
        e.learningRate = Double(spec.schedule.rate(at: Double(samples) / Double(totalSamples)))
        e.averagingRounds = shared.roundStats(slot: coordinatorSlot).rounds
        e.bytesExchanged = shared.bytesExchanged().bytes
        emit(e)
    }

    mutating func emitEvaluation(_ eval: Evaluation, samples: Int, elapsed: Double) {
        var e = HostEvent(.evaluation, job: spec.id)
        e.elapsed = elapsed
        e.samples = samples
        e.epoch = Double(samples) / Double(data.epochRows)
        e.epochs = spec.epochs
        e.samplesPerSecond = Double(samples) / max(elapsed, 1e-9)
        e.trainLoss = shared.meanLoss(workers: spec.workers)
        e.testLoss = eval.meanLoss.finiteOrNil
        e.testAccuracy = model.isClassifier ? eval.accuracy : nil
        e.averagingRounds = shared.roundStats(slot: coordinatorSlot).rounds
        e.bytesExchanged = shared.bytesExchanged().bytes
        emit(e)
        try? metrics?.write(e.jsonLine() + "\n")
        try? metrics?.flush()
    }

    /// Why training has diverged, or nil: a worker's loss that is not finite (it stopped at that
    /// step), or, with `evaluator`, a parameter of the averaged model that is not finite (the
    /// hinge loss of a NaN model is 0, so the loss alone does not tell).
    func divergence(evaluator: Evaluator?) -> String? {
        let rows = Double(data.epochRows)
        let epoch = String(format: "%.2f", Double(shared.totalSamples()) / rows)
        let hint = "lower --lr (\(spec.schedule.base) now) or scale the features (e.g. to [0, 1])"
        if let d = shared.divergedWorker() {
            let what =
                d.loss.isFinite
                ? "grew from \(String(format: "%.3g", d.first)) to \(String(format: "%.3g", d.loss)) (more than a hundred times)"
                : "is \(d.loss.isNaN ? "NaN" : "infinite")"
            return "training diverged: worker \(d.worker)'s loss \(what) at its step \(d.steps), epoch \(epoch) of "
                + "\(spec.epochs); \(hint)"
        }
        if let evaluator, let (block, index) = evaluator.firstNonFiniteParameter() {
            return "training diverged: the model's parameter \(block)[\(index)] is not finite at epoch \(epoch) "
                + "of \(spec.epochs); \(hint)"
        }
        return nil
    }

    func fail(_ message: String) -> Int32 {
        var e = HostEvent(.failed, job: spec.id)
        e.error = message
        emit(e)
        return JobHost.exitFailed
    }
}

extension JobHost {
    /// The job-host entry point of `lapwing job-host` and `lapwingd job-host`: the spec arrives
    /// as JSON on stdin, events leave as JSON lines on stdout (unbuffered). Returns the exit code.
    public static func runFromStandardIO() -> Int32 {
        // The daemon reading our events may die (and a later one re-attach through the arena
        // and summary.json): a write to the closed pipe must fail, not kill the host.
        signal(SIGPIPE, SIG_IGN)
        let input = FileHandle.standardInput.readDataToEndOfFile()
        let spec: JobSpec
        do {
            spec = try JSONDecoder().decode(JobSpec.self, from: input)
        } catch {
            writeError("job-host: stdin is not a job spec: \(error)\n")
            return 2
        }
        return run(spec) { event in
            let line = Array((event.jsonLine() + "\n").utf8)
            var off = 0
            while off < line.count {
                let n = line.withUnsafeBytes { write(1, $0.baseAddress! + off, $0.count - off) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
                off += n
            }
        }
    }
}

extension JobSummary {
    /// The summary of a job stopped before it trained anything (e.g. while its data were read).
    init(stoppedBeforeTraining spec: JobSpec, reason: String) {
        self.init(
            job: spec.id, outcome: "interrupted", reason: reason, algorithm: spec.algorithm.name, model: spec.model,
            data: spec.data, workers: spec.workers, replicas: 0, batch: spec.batch, epochs: 0, samples: 0,
            trainSeconds: 0, samplesPerSecond: 0, testAccuracy: nil, testLoss: nil, trainLoss: nil, testRows: 0,
            averagingRounds: 0, averagingBytes: 0, averagingSeconds: 0, bytesExchanged: 0, crossNodeBytes: 0, knobs: nil,
            blas: "", modelPath: nil, metricsPath: nil)
    }
}

extension Double {
    /// The value, or nil when it is NaN or infinite (JSON has no such numbers: an event holding
    /// one would not encode).
    fileprivate var finiteOrNil: Double? { isFinite ? self : nil }
}
