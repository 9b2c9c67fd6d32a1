import LapwingArena
import LapwingCore
import LapwingJob
import LapwingModels

/// Synchronous SGD with backup workers (Chen, Pan, Monga, Bengio, Jozefowicz, "Revisiting
/// Distributed Synchronous SGD", 2016): `--workers` counts all N+b processes, `--backups` b of
/// them spare. One replica. Every step each worker computes the gradient of its own next B rows
/// at the current point and arrives at a first-N-of-M barrier (M = N+b, quorum N):
///
/// - the arrival that completes the round (the N-th counted) applies exactly the N counted
///   gradients, the arrival log in ticket order: their mean, one SGD step with momentum, then the
///   round advances (the barrier's releasing store publishes the new point to everyone);
/// - an arrival after the round had its N is late: its gradient is dropped, never applied.
///
/// A worker always works on the round open when it starts its step (read from the barrier), so
/// a straggler skips the rounds it missed instead of making anyone wait, and a gradient is
/// either counted in the round whose point it was computed at or dropped. Whichever process
/// completes a round does the whole update, so the momentum lives in the arena (the replica's
/// second vector), the same for every completer. The completer books N*B samples (only applied
/// gradients count; the others book their step with 0 samples), and every worker stops once
/// the rounds reach the budget over N*B, rounded up. The rounds are recorded as the job's
/// `averagingRounds` with the seconds the updates took, so samples == N * B * rounds.
///
/// Bytes counted: every worker's exchange vector written (4d per step); the completer reads the
/// N vectors (4Nd), the replica (8d) and the momentum vector (8d) per round.
struct BackupWorkers: TrainingAlgorithm {
    static let name = "backup-workers"
    static let summary =
        "synchronous SGD with b backup workers: each step applies the first N = workers-b gradients, drops the rest (Chen et al. 2016)"
    static let knobs: [Knob] = [
        Knob(
            "backups", default: 1, range: 0...4095, integer: true,
            help: "spare workers among --workers: each step applies the first workers-backups gradients")
    ]

    let backups: Int
    let workers: Int
    let momentum: Bool

    init(spec: JobSpec, knobs: Knobs) throws(LapwingError) {
        if let r = spec.replicas, r != 1 {
            throw LapwingError(.invalidArgument, "--replicas \(r): backup-workers trains one model")
        }
        backups = knobs.int("backups")
        workers = spec.workers
        guard backups < spec.workers else {
            throw LapwingError(
                .invalidArgument,
                "--backups \(backups): backup-workers needs fewer backups than --workers (\(spec.workers)), which counts them",
                detail: "e.g. --workers \(backups + 1) --backups \(backups)")
        }
        momentum = spec.sgd.momentum != 0
    }

    var quorum: Int { workers - backups }

    func replicaCount(numaNodes: Int) throws(LapwingError) -> Int { 1 }

    func arenaNeeds(replicas: Int) -> ArenaNeeds {
        ArenaNeeds(vectorsPerReplica: momentum ? 2 : 1, exchangeVectorsPerWorker: 1, barriers: 1)
    }

    func configureBarriers(_ shared: SharedState, replicaWorkers: [[Int]], replicaNodes: [Int32]) {
        shared.barrier(0).configure(participants: workers, quorum: quorum)
    }

    /// Each worker its own order; the gradient stays raw (it is exchanged).
    func trainerShape(_ c: WorkerContext) -> TrainerShape { TrainerShape(fuseMomentum: false) }

    func workerStep(_ c: WorkerContext) -> any WorkerStep { BackupWorkerStep(c, quorum: quorum, momentum: momentum) }
}

/// One worker of `BackupWorkers` (see there for the step).
struct BackupWorkerStep: WorkerStep {
    let index: Int
    let quorum: Int
    let shared: SharedState
    let barrier: ArenaBarrier
    let update: BackupUpdate
    /// Rounds of the job: the budget over N*B, rounded up.
    let rounds: Int
    let schedule: LearningRateSchedule
    let bytesPerStep: Int
    let crossPerStep: Int
    var bytes = 0
    var cross = 0

    init(_ c: WorkerContext, quorum: Int, momentum: Bool) {
        index = c.index
        self.quorum = quorum
        shared = c.shared
        barrier = c.shared.barrier(0)
        rounds = max(1, Int((Double(c.totalSamples) / Double(quorum * c.spec.batch)).rounded(.up)))
        schedule = c.spec.schedule
        let d = c.parameterCount, me = c.node(ofWorker: c.index)
        let memory = c.replicaNodes.first ?? 0
        let crossing = (0..<c.spec.workers).map { c.exchangeNode(ofWorker: $0) != me }
        update = BackupUpdate(
            shared: c.shared, sgd: c.spec.sgd, x: c.shared.replica(0),
            velocity: momentum ? c.shared.vector(1, ofReplica: 0) : nil,
            buffers: (0..<c.spec.workers).map { c.shared.exchange(0, ofWorker: $0) },
            crossing: crossing, replicaCrosses: memory != me, count: d, roundsSlot: c.spec.workers)
        bytesPerStep = 4 * d
        crossPerStep = crossing[c.index] ? 4 * d : 0
    }

    mutating func step(_ t: inout Trainer) -> Bool {
        // The round open now: the point every counted gradient of it is computed at.
        let round = barrier.round
        guard Int(round) < rounds else { return false }
        if t.steps & 7 == 0 { guard shared.waitWhilePaused() else { return false } }
        t.draw(t.batch)
        let loss = t.gradient(at: update.x)
        guard loss.isFinite else {
            t.finish(samples: 0, loss: loss)
            return false
        }
        GradientExchange.publish(t.grad, into: update.buffers[index])
        bytes += bytesPerStep
        cross += crossPerStep
        let u = update
        let rate = schedule.rate(at: Double(round) / Double(rounds))
        var applied = 0
        var moved = (bytes: 0, cross: 0)
        let outcome = barrier.arriveAndWait(round: round, participant: index) { arrivals in
            (applied, moved) = u.apply(arrivals, rate: rate, round: round)
        }
        if case .stopped = outcome { return false }
        bytes += moved.bytes
        cross += moved.cross
        shared.recordExchange(slot: index, bytes: bytes, crossNode: cross)
        t.finish(samples: applied * t.batch, loss: loss)
        return true
    }
}

/// The update of a completed round, done by whichever worker completes it.
struct BackupUpdate {
    let shared: SharedState
    let sgd: SGDRule
    let x: UnsafeMutablePointer<Float>
    /// The momentum, in the arena (nil without momentum).
    let velocity: UnsafeMutablePointer<Float>?
    let buffers: [UnsafeMutablePointer<Float>]
    /// Whether worker w's exchange vector is on another NUMA node than this worker.
    let crossing: [Bool]
    /// Whether the replica (and its momentum vector) is on another node than this worker.
    let replicaCrosses: Bool
    let count: Int
    /// The slot whose counters hold the rounds (the coordinator's, unused by this algorithm).
    let roundsSlot: Int

    /// Applies the mean of the counted workers' gradients, summed in ticket order, as one step;
    /// records the round. Returns the gradients applied and the bytes moved.
    func apply(_ arrivals: BarrierArrivals, rate: Float, round: UInt32) -> (Int, (bytes: Int, cross: Int)) {
        let t0 = monotonicSeconds()
        let sources = arrivals.map { buffers[$0] }
        let sum = sources[0]
        // Summed into the first counted worker's vector (it waits for this round to complete before
        // writing it again; no one else reads it this round).
        SliceAverage.average(sources, into: [sum], range: 0..<count)
        sgd.update(rate, sum, velocity, x, count)
        var bytes = 4 * count * (sources.count + 1) + 8 * count
        var cross = 0
        for w in arrivals where crossing[w] { cross += 4 * count }
        if crossing[arrivals[0]] { cross += 4 * count }
        if replicaCrosses { cross += 8 * count }
        if velocity != nil {
            bytes += 8 * count
            if replicaCrosses { cross += 8 * count }
        }
        let before = shared.roundStats(slot: roundsSlot)
        shared.recordRounds(slot: roundsSlot, rounds: Int(round) + 1, seconds: before.seconds + monotonicSeconds() - t0)
        return (sources.count, (bytes, cross))
    }
}
