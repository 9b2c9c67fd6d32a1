import LapwingCore
import LapwingJob

#if canImport(Glibc)
import Glibc
#endif

/// The machine level of a job that spans several machines (design section 12): a child of the
/// job host, like the averager, that joins the MPI world and averages the machine's model
/// across machines with LAP-SGD's delta trick (as bapi/LPP-SGD does across nodes). A round:
/// snapshot the machine's model s_m (the mean of its replicas), a = all-reduce mean of s over
/// the machines, then x_r += a - s_m on every replica r.
///
/// When rounds run is the algorithm's `MachineLevel.Schedule`:
/// - background (LAP-SGD, LPP-SGD): workers never wait for it; updates they make during the
///   round survive as deltas. Before each round every rank states its progress in an
///   all-reduce MAX (whether its job is stopping, minus the fraction of its share it has
///   trained, and the node-level steps since the last round), so all ranks enter the same
///   collectives: a round runs when some machine has moved the schedule's steps. A machine that
///   has trained its share idles (its replicas still take the others' deltas) until every
///   machine has, so the job trains exactly its budget.
/// - lockstep (local SGD, Hier-AVG, SlowMo): worker 0 asks for each round inside the workers'
///   own synchronous round (`MachineRoundPoint`), and they wait for it; every rank takes the
///   same steps (checked before training), so every rank asks for the same rounds. Before each,
///   a MAX of whether the rank's job has stopped instead lets all leave together.
///
/// Then, or as soon as some rank's job is stopping (interrupted, failed), every bridge tells
/// its host to stop, waits for the host's workers to stop, and joins one last exact round,
/// after which every machine holds the same model.
///
/// Only this process initialises MPI: the job host stays single-threaded and in a process group
/// of its own, so when mpirun ends the job (a rank died, a machine was lost) it kills the
/// bridge, and the host sees that, writes its model and ends with the reason.
struct MachineBridge {
    static let role = "bridge"
    /// Exit status of a bridge whose MPI call failed (its error is in the host's log).
    static let exitMPIFailed: Int32 = 5
    /// Exit status of a bridge that heard nothing from the other machines within
    /// `--mpi-timeout` (a network split, a stalled machine); it leaves MPI unfinalised.
    static let exitMPITimeout: Int32 = 6
    /// Exit status of a bridge whose ranks would take different steps in lockstep.
    static let exitStepsDisagree: Int32 = 7

    /// The handshake bits (`SharedState.signalMachineLevel`).
    enum Signal {
        /// Bridge to host: every machine has trained its share, or some job is stopping: stop.
        static let machinesDone: UInt32 = 1
        /// Host to bridge: the workers have stopped; join the last round.
        static let workersStopped: UInt32 = 2
        /// Bridge to host: every machine's bridge has joined; start the workers.
        static let machinesReady: UInt32 = 4
    }

    let shared: SharedState
    let replicaWorkers: [[Int]]
    let totalSamples: Int
    /// Samples a step of all this machine's workers takes (workers times batch).
    let samplesPerStep: Int
    let parameterCount: Int
    let level: MachineLevel
    let machine: MachineRank
    /// The job's compressor (`--compress`): rounds but the last go through it
    /// (`CompressedMachineRound`); nil: the model travels whole.
    let compression: Compression?
    /// Where this rank meets the others without a launcher, when its host knows (rank 0, or a
    /// daemon's rank given rank 0's meeting); else a rendezvous file is read, or the launcher's
    /// world is used.
    let meet: (uri: String, name: String)?

    /// "Done" in the progress all-reduce; a fraction of the budget is scaled to below it.
    static let done: Int64 = 1 << 30

    func run() -> Int32 {
        do throws(LapwingError) {
            var form: (name: String, rank: Int, size: Int)?
            var found = meet
            if found == nil, let file = machine.rendezvous { found = try Rendezvous.read(file, timeout: machine.exchangeTimeout) }
            if let found {
                setenv("OMPI_MCA_pmix_server_uri", found.uri, 1)
                form = (found.name, machine.rank, machine.size)
            }
            let world = try MPI.initialize(timeout: machine.exchangeTimeout, form: form)
            guard world.rank == machine.rank, world.size == machine.size else {
                throw LapwingError(
                    .invalidArgument,
                    "MPI says this is rank \(world.rank) of \(world.size), the launcher's environment said \(machine.rank) of \(machine.size)")
            }
            guard try agreeToStart() else {
                writeError(
                    "lapwing bridge (rank \(machine.rank) of \(machine.size)): the ranks disagree on the steps of a lockstep job "
                        + "(\(totalSamples) samples of \(samplesPerStep) a step here)\n")
                MPI.finalize()
                return Self.exitStepsDisagree
            }
            try exchange()
            MPI.finalize()
            return 0
        } catch {
            writeError("lapwing bridge (rank \(machine.rank) of \(machine.size)): \(error.description)\n")
            // After a timeout MPI_Finalize would wait for the other machines too: just exit.
            return MPI.isTimeout(error) ? Self.exitMPITimeout : Self.exitMPIFailed
        }
    }

    private func exchange() throws(LapwingError) {
        let d = parameterCount
        let snapshot = UnsafeMutablePointer<Float>.allocate(capacity: d)
        let mean = UnsafeMutablePointer<Float>.allocate(capacity: d)
        // Made before the workers start: its anchor is the machines' common initial model.
        var compressed = try compression.map { (c) throws(LapwingError) in
            try CompressedMachineRound(c, machine: machine, count: d, initial: shared.replica(0))
        }
        defer {
            snapshot.deallocate()
            mean.deallocate()
            compressed?.deallocate()
        }
        // Every rank's bridge is up (its host has loaded its data, `agreeToStart`): the workers may start.
        shared.signalMachineLevel(Signal.machinesReady)
        var (rounds, seconds, bytes) = (0, 0.0, 0)
        let replicas = replicaWorkers.indices.map { shared.replica($0) }
        /// One round; `progress` nil: exact, whatever the compression (the last round).
        func round(progress: Double?) throws(LapwingError) {
            let t0 = monotonicSeconds()
            machineModel(into: snapshot)
            if let progress, var c = compressed {
                bytes += try c.round(snapshot, replicas: replicas, progress: progress)
                compressed = c
            } else {
                try exactRound(snapshot, mean, replicas: replicas)
                bytes += d * MemoryLayout<Float>.stride
            }
            seconds += monotonicSeconds() - t0
            rounds += 1
            shared.recordMachineRounds(rounds: rounds, seconds: seconds, bytes: bytes)
        }
        if level.isLockstep { try lockstep(round) } else { try background(round) }
        // Some rank is done: stop here too, and average once more, exactly, when no worker
        // moves any more: every machine ends with the same model.
        shared.signalMachineLevel(Signal.machinesDone)
        while shared.machineLevelSignals() & Signal.workersStopped == 0 { sleep(milliseconds: 1) }
        try round(progress: nil)
    }

    /// The first collective: every rank has loaded its data. A lockstep machine level also
    /// needs every rank to take the same steps (the same samples, and the same workers times
    /// batch), or one rank would wait for a round that the others never run: false if they
    /// disagree (every rank learns it from the same all-reduce).
    private func agreeToStart() throws(LapwingError) -> Bool {
        guard level.isLockstep else {
            var ready: [Int64] = [0]
            try MPI.max(&ready)
            return true
        }
        let (n, b) = (Int64(totalSamples), Int64(samplesPerStep))
        var state: [Int64] = [n, -n, b, -b]
        try MPI.max(&state)
        return state[0] == -state[1] && state[2] == -state[3]
    }

    /// Background rounds (LAP-SGD): before each, every rank states its progress in an
    /// all-reduce MAX (whether its job is stopping, minus the fraction of its share it has
    /// trained, and the node-level steps since the last round); a round runs when some machine
    /// has moved the schedule's steps. Returns when every machine has trained its share, or
    /// some rank's job is stopping.
    private func background(_ round: (Double?) throws(LapwingError) -> Void) throws(LapwingError) {
        var last = replicaWorkers.map { shared.steps(of: $0) }
        while true {
            let stopping = pace(since: last)
            let share = min(Self.done, Int64(Double(shared.totalSamples()) / Double(totalSamples) * Double(Self.done)))
            let now = replicaWorkers.map { shared.steps(of: $0) }
            // MAX of: whether some job is stopping, minus each share done (the slowest's), the
            // node-level steps since the last round.
            var state: [Int64] = [stopping ? 1 : 0, -share, Int64(zip(now, last).map { $0 - $1 }.min() ?? 0)]
            try MPI.max(&state)
            if state[0] > 0 || -state[1] >= Self.done { return }
            let fraction = Double(-state[1]) / Double(Self.done)
            if state[2] >= Int64(level.interval(at: fraction)) {
                try round(fraction)
                last = now
            }
        }
    }

    /// Lockstep rounds (local SGD, Hier-AVG, SlowMo): a round whenever worker 0 asks for one
    /// (`MachineRoundPoint`), its machine's workers waiting. Before it, an all-reduce MAX of
    /// whether this rank's job has stopped instead (training done, interrupted, failed): every
    /// rank runs the same rounds, so when one stops the others are in, or about to enter, the
    /// same collective, and all leave together. Returns then.
    private func lockstep(_ round: (Double?) throws(LapwingError) -> Void) throws(LapwingError) {
        var served = 0
        while true {
            let request = awaitRequest(after: served)
            var state: [Int64] = [request == nil ? 1 : 0]
            try MPI.max(&state)
            guard state[0] == 0, let request else { return }
            try round(request.progress)
            served = request.round
            shared.completeMachineRound(served)
        }
    }

    /// The next round worker 0 asks for after round `served`, or nil once this machine's job
    /// is stopping or its workers have stopped.
    private func awaitRequest(after served: Int) -> (round: Int, progress: Double?)? {
        var pause = 0.02
        while true {
            let r = shared.machineRoundRequest()
            if r.round > served { return r }
            if shared.isStopping || shared.machineLevelSignals() & Signal.workersStopped != 0 { return nil }
            sleep(milliseconds: pause)
            pause = min(pause * 2, 1)
        }
    }

    /// Waits until a replica has moved since the last round, this machine's job is stopping
    /// (interrupted, or failed), or a few milliseconds have passed (so that a rank with nothing
    /// to say, its share trained, still answers the others' progress all-reduce soon); returns
    /// whether the job is stopping.
    private func pace(since last: [Int]) -> Bool {
        let deadline = monotonicSeconds() + 0.005
        while true {
            if shared.isStopping || shared.machineLevelSignals() & Signal.workersStopped != 0 { return true }
            let moved = zip(replicaWorkers, last).contains { shared.steps(of: $0) > $1 }
            if moved || monotonicSeconds() >= deadline { return false }
            sleep(milliseconds: 0.2)
        }
    }

    /// s = the mean of this machine's replicas.
    private func machineModel(into s: UnsafeMutablePointer<Float>) {
        let d = parameterCount
        let r = replicaWorkers.count
        s.update(from: shared.replica(0), count: d)
        guard r > 1 else { return }
        for k in 1..<r { Vectors.add(shared.replica(k), into: s, count: d) }
        let inv = 1 / Float(r)
        for j in 0..<d { s[j] *= inv }
    }

    /// The exact round: a = the mean of s over the machines (an all-reduce of the whole model),
    /// then x_r += a - s on every replica.
    private func exactRound(_ s: UnsafePointer<Float>, _ a: UnsafeMutablePointer<Float>, replicas: [UnsafeMutablePointer<Float>])
        throws(LapwingError)
    {
        let d = parameterCount
        a.update(from: s, count: d)
        try MPI.sum(a, count: d)
        let inv = 1 / Float(machine.size)
        for j in 0..<d { a[j] = a[j] * inv - s[j] }  // a now holds the delta a - s
        for x in replicas { Vectors.add(a, into: x, count: d) }
    }

    /// Why the job ends when the bridge process `child` ended before its last round.
    static func describeLoss(_ child: ChildProcesses.Child, machine: MachineRank) -> String {
        let status = child.status ?? 0
        let died = "the machine bridge of rank \(machine.rank) of \(machine.size) (pid \(child.pid)) \(describeWaitStatus(status))"
        let kept = "; this machine's model is written as it stands"
        if status & 0x7f == 0 && (status >> 8) & 0xff == exitMPIFailed {
            return "\(died): an MPI call failed (the host's log has MPI's error)" + kept
        }
        if status & 0x7f == 0 && (status >> 8) & 0xff == exitStepsDisagree {
            return "\(died): the ranks would take different steps, which a lockstep algorithm cannot: every machine needs the "
                + "same --workers, --batch and --epochs"
        }
        if status & 0x7f == 0 && (status >> 8) & 0xff == exitMPITimeout {
            return "\(died): no answer from the other machines within \(MachineRank.secondsText(machine.exchangeTimeout)) s "
                + "(--mpi-timeout), likely a network split or a stalled machine" + kept
        }
        // Killed by mpirun or srun, or ended by Open MPI itself (it exits the process when the
        // launcher aborts the job): MPI without ULFM cannot go on with fewer ranks.
        return "\(died): MPI ended the job's ranks (another rank failed, its machine was lost, or the job was interrupted)" + kept
    }
}

private func sleep(milliseconds: Double) {
    var ts = timespec(tv_sec: 0, tv_nsec: Int(milliseconds * 1e6))
    nanosleep(&ts, nil)
}
