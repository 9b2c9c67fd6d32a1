import CLapwing
import LapwingCore
import LapwingJob

#if canImport(Glibc)
import Glibc
#endif

extension JobHost {
    /// Seconds the host waits at least for the bridge's last round across machines once its own
    /// workers have stopped (the other machines' workers stop within a step of hearing that a
    /// rank is done; a machine that is lost ends the job through mpirun instead, a split network
    /// through the bridge's `--mpi-timeout`, which this wait outlasts).
    static let lastMachineRoundTimeout = 120.0

    /// A host of a job across machines leaves its launcher's process group first: when mpirun
    /// ends the job it kills each rank's process group, and the host must outlive that to
    /// write its model (it follows its bridge instead, which mpirun kills as an MPI process).
    static func leaveLauncherGroup(_ spec: JobSpec) {
        if spec.machine != nil { setpgid(0, 0) }
    }
}

extension Algorithms {
    /// Refuses `--mpi` for an algorithm without a machine level, naming those that have one.
    static func checkMachineLevel(_ algorithm: any TrainingAlgorithm, _ spec: JobSpec) throws(LapwingError) {
        guard spec.machine != nil, algorithm.machineLevel() == nil else { return }
        var with: [String] = []
        for t in all {
            var other = spec
            other.algorithm = AlgorithmConfig(name: t.name)
            do throws(LapwingError) {
                if try resolve(other).machineLevel() != nil { with.append(t.name) }
            } catch {}
        }
        throw LapwingError(
            .unsupported, "--mpi: \(spec.algorithm.name) has no machine level",
            detail: "across machines Lapwing runs \(with.joined(separator: ", "))")
    }
}

extension JobRun {
    /// Forks the machine bridge of a job across machines, before any worker, and waits until
    /// every machine's bridge has joined the MPI world (so every machine has loaded its data):
    /// then all start training together, from the same initial model.
    mutating func startMachineLevel() throws(LapwingError) {
        guard let machine = spec.machine, let level = algorithm.machineLevel() else { return }
        // Without a launcher, rank 0 starts the ompi-server where the ranks meet, and publishes it.
        var meet: (uri: String, name: String)?
        if machine.rank == 0 && (machine.rendezvous != nil || machine.meeting != nil) {
            let id = spec.id
            let server = try RendezvousServer.start(file: machine.rendezvous, name: "lapwing-\(spec.id)") { HostLog.write(id, $0) }
            rendezvousServer = server
            meet = (server.uri, server.name)
            if machine.meeting != nil {
                var e = HostEvent(.rendezvous, job: spec.id)
                e.machineMeeting = MachineMeeting(server: server.uri, name: server.name)
                emit(e)
            }
        } else if let m = machine.meeting, let server = m.server, let name = m.name {
            meet = (server, name)
        }
        let bridge = MachineBridge(
            shared: shared, replicaWorkers: placement.replicas.map(\.workers), totalSamples: totalSamples,
            samplesPerStep: spec.workers * spec.batch, parameterCount: model.parameterCount, level: level, machine: machine,
            compression: compression, meet: meet)
        try Compressors.checkFits(compression, dimension: model.parameterCount, participants: machine.size)
        let pid = try children.spawn(role: MachineBridge.role, cpu: placement.averager.cpu) { bridge.run() }
        // The bridge's collectives have their deadline; joining the others (a blocking
        // MPI_Comm_accept without a launcher) gets one here.
        let deadline = monotonicSeconds() + machine.exchangeTimeout + 30
        while shared.machineLevelSignals() & MachineBridge.Signal.machinesReady == 0 {
            if monotonicSeconds() > deadline {
                kill(pid, SIGKILL)
                throw LapwingError(
                    .system, "before training: the other machines did not join within \(Int(machine.exchangeTimeout + 30)) s (--mpi-timeout)")
            }
            if let ended = children.reap().first {
                throw LapwingError(.system, "before training: " + MachineBridge.describeLoss(ended, machine: machine))
            }
            if lw_stop_signal() != 0 {
                throw LapwingError(.system, "stopped by signal \(lw_stop_signal()) while waiting for the other machines to join")
            }
            pause()
        }
    }

    /// Whether this machine, its share trained, still waits for the others (the bridge goes on
    /// averaging their progress into its replicas until every machine is done). Not in
    /// lockstep: there every machine's workers end with the same last round.
    var awaitsOtherMachines: Bool {
        spec.machine != nil && !machinesDone && !Algorithms.hasLockstepMachineLevel(algorithm, spec)
    }

    /// Whether the bridge says every machine is done (or some job is stopping), so this one stops.
    var machinesDone: Bool {
        spec.machine != nil && shared.machineLevelSignals() & MachineBridge.Signal.machinesDone != 0
    }

    /// Why this machine stops before it has trained its share, when the bridge says the
    /// machines are done: another machine's job ended first (interrupted, or failed).
    var endedByAnotherMachine: String? {
        guard let machine = spec.machine, shared.totalSamples() < totalSamples else { return nil }
        return "another machine's job ended first (interrupted or failed: its own summary says why) at "
            + "\(shared.totalSamples()) of this machine's \(totalSamples) samples; rank \(machine.rank)'s model is the machines' average at that point"
    }

    /// Ends the machine level after training (the job's state is already `stopping`): waits for
    /// the workers to stop, lets the bridge run its last round, and waits for it. Returns why
    /// that failed, or nil (also when there is no bridge, or it had already ended).
    func finishMachineLevel() -> String? {
        guard let machine = spec.machine, let bridge = children.running.first(where: { $0.role == MachineBridge.role }) else {
            return nil
        }
        let workersBy = monotonicSeconds() + 30
        while children.running.contains(where: \.isWorker) && monotonicSeconds() < workersBy {
            children.reap()
            pause()
        }
        shared.signalMachineLevel(MachineBridge.Signal.workersStopped)
        let wait = max(JobHost.lastMachineRoundTimeout, machine.exchangeTimeout + 30)
        let deadline = monotonicSeconds() + wait
        while true {
            if let ended = children.reap().first(where: { $0.role == MachineBridge.role }) {
                return ended.status == 0 ? nil : MachineBridge.describeLoss(ended, machine: machine)
            }
            if monotonicSeconds() > deadline {
                kill(bridge.pid, SIGKILL)
                return "the machine bridge of rank \(machine.rank) of \(machine.size) did not finish its last round across "
                    + "machines within \(Int(wait)) s (another machine is stalled); this machine's model is written as it stands"
            }
            pause()
        }
    }

    /// The machine level's figures in the summary of a job across machines.
    func addMachineLevel(to summary: inout JobSummary) {
        guard let machine = spec.machine else { return }
        let m = shared.machineRounds()
        summary.machines = machine.size
        summary.machineRank = machine.rank
        summary.machineRounds = m.rounds
        summary.machineBytes = m.bytes
        summary.machineSeconds = m.seconds
        // The whole model per round; compressed rounds vary, and the last round is exact.
        summary.machineBytesPerRound = m.rounds > 0 ? m.bytes / m.rounds : model.parameterCount * MemoryLayout<Float>.stride
    }

    private func pause() {
        var ts = timespec(tv_sec: 0, tv_nsec: 2_000_000)
        nanosleep(&ts, nil)
    }
}

extension Algorithms {
    /// Whether a job across machines runs `algorithm`'s machine level in lockstep with its workers.
    static func hasLockstepMachineLevel(_ algorithm: any TrainingAlgorithm, _ spec: JobSpec) -> Bool {
        spec.machine != nil && algorithm.machineLevel()?.isLockstep == true
    }

    /// The barrier of the lockstep rounds across machines: the arena's last (`arenaNeeds` adds it).
    static func machineBarrier(_ algorithm: any TrainingAlgorithm, spec: JobSpec, replicas: Int) -> Int? {
        hasLockstepMachineLevel(algorithm, spec) ? arenaNeeds(algorithm, spec: spec, replicas: replicas).barriers - 1 : nil
    }
}
