import LapwingArena
import LapwingCore
import LapwingJob

/// Local SGD (K-AVG: Zhou & Cong, "On the convergence properties of a K-step averaging
/// stochastic gradient descent algorithm for nonconvex optimization", IJCAI 2018; post-local SGD:
/// Lin, Stich, Patel, Jaggi, "Don't Use Large Mini-Batches, Use Local SGD", ICLR 2020, code
/// epfml/LocalSGD-Code): one replica per worker; each worker takes K private steps on its own
/// replica (its momentum stays private and is never averaged), then all workers meet at a
/// barrier and replace every replica by the exact average. During the first `--post-local-after`
/// of training K = 1 (the post-local warm-up: with momentum 0 that is minibatch SGD at batch W*B).
///
/// The synchronous conventions (`SynchronousPlan`): one shared sample order, a fixed number of
/// steps, the learning rate of the global step, samples booked after the step's exchange. The
/// last step always ends with an average, so the exported model is the average of equal replicas.
///
/// A round: barrier 0 (every worker's step is written), worker w averages its slice of the
/// parameters over all replicas in replica order and writes it into every replica, barrier 0
/// again (nobody steps on a replica while another worker still reads it). It moves, per worker,
/// its slice read and written in each of the W-1 other replicas: 2 * (W-1) * d/W floats.
///
/// `--period` defaults to 16: the H of Lin et al.'s post-local SGD experiments (their Table 3
/// and code's `local_step`), which keeps 1/16 of minibatch SGD's exchanges at no loss of
/// accuracy there; K-AVG's analysis also favours K > 1 (their experiments sweep K up to 64).
struct LocalSGD: TrainingAlgorithm {
    static let name = "local-sgd"
    static let summary =
        "a replica per worker, K private steps, exact average at a barrier; post-local warm-up with K = 1 (Lin et al. 2020, K-AVG)"
    static let knobs: [Knob] = [
        Knob("period", default: 16, range: 1...1_000_000, integer: true, help: "K: private steps between two exact averages"),
        Knob("post-local-after", default: 0, range: 0...1, help: "fraction of training that averages after every step (K = 1)"),
    ]

    let workers: Int
    let period: Int
    let postLocalAfter: Double

    init(spec: JobSpec, knobs: Knobs) throws(LapwingError) {
        try Self.requireReplicaPerWorker(spec, name: Self.name)
        workers = spec.workers
        period = knobs.int("period")
        postLocalAfter = knobs.double("post-local-after")
    }

    static let compressionSite: CompressionSite? = .workers

    func replicaCount(numaNodes: Int) throws(LapwingError) -> Int { workers }

    func arenaNeeds(replicas: Int) -> ArenaNeeds { ArenaNeeds(barriers: 1) }

    func trainerShape(_ c: WorkerContext) -> TrainerShape { LocalSteps.trainerShape(c) }

    func workerStep(_ c: WorkerContext) -> any WorkerStep {
        LocalSGDStep(c, period: period, postLocalAfter: postLocalAfter)
    }

    /// Across machines (`--mpi`), every average is over every machine's workers: the machines'
    /// models are averaged right after the machine's own average, its workers waiting.
    func machineLevel() -> MachineLevel? { .lockstep }

    /// The algorithms with a replica per worker refuse any other `--replicas`.
    static func requireReplicaPerWorker(_ spec: JobSpec, name: String) throws(LapwingError) {
        if let r = spec.replicas, r != spec.workers {
            throw LapwingError(
                .invalidArgument, "--replicas \(r): \(name) keeps one replica per worker (\(spec.workers) workers)",
                detail: "leave --replicas out, or give --replicas \(spec.workers)")
        }
    }
}

/// A local-SGD worker: K private steps, then an exact average over all replicas (or a compressed
/// one, with `--compress`).
struct LocalSGDStep: WorkerStep {
    var local: LocalSteps
    var exchange: ReplicaExchange
    var compressed: CompressedReplicaExchange?
    var machine: MachineRoundPoint?
    var ledger: ExchangeLedger
    let period: Int
    /// Steps 0..<warmupSteps average after every step.
    let warmupSteps: Int
    var sinceAverage = 0

    init(_ c: WorkerContext, period: Int, postLocalAfter: Double) {
        local = LocalSteps(c)
        exchange = ReplicaExchange(c, barrier: 0, replicas: Array(0..<c.replicaWorkers.count), rank: c.index)
        compressed = c.compression.map {
            CompressedReplicaExchange(c, $0, barrier: 0, members: Array(0..<c.spec.workers), rank: c.index)
        }
        machine = MachineRoundPoint(c)
        ledger = ExchangeLedger(c)
        self.period = period
        warmupSteps = Int((postLocalAfter * Double(local.plan.steps)).rounded(.up))
    }

    mutating func step(_ t: inout Trainer) -> Bool {
        guard let loss = local.step(&t) else { return false }
        sinceAverage += 1
        if sinceAverage >= (local.taken <= warmupSteps ? 1 : period) || local.isLast {
            sinceAverage = 0
            if compressed != nil {
                let progress = local.progress
                guard ledger.time({ compressed!.average(progress: progress) }) else { return false }
            } else {
                guard ledger.time(&exchange, { $0.average() }) else { return false }
            }
            if machine != nil { guard machine!.run(progress: local.progress, last: local.isLast) else { return false } }
        }
        t.finish(samples: t.batch, loss: loss)
        return true
    }
}

/// The private part of a local-SGD-like step (local SGD, Hier-AVG, SlowMo): the worker's rows of
/// the global step from the shared order, the gradient at its own replica, and the step into it
/// at the global step's learning rate (private momentum). Booking is left to the caller, after
/// its exchange.
struct LocalSteps {
    let plan: SynchronousPlan
    let x: UnsafeMutablePointer<Float>
    let shared: SharedState
    /// Global steps taken so far.
    private(set) var taken = 0

    init(_ c: WorkerContext) {
        plan = SynchronousPlan(c)
        x = c.shared.replica(c.replica)
        shared = c.shared
    }

    /// The shared order; momentum may be folded into the gradient buffer (the gradient is never
    /// exchanged, only parameters).
    static func trainerShape(_ c: WorkerContext) -> TrainerShape {
        TrainerShape(orderStream: SynchronousPlan.sharedOrderStream, fuseMomentum: true)
    }

    /// Whether the step just taken was the last.
    var isLast: Bool { taken == plan.steps }

    /// The fraction of the steps taken.
    var progress: Double { Double(taken) / Double(plan.steps) }

    /// The learning rate of the step just taken.
    var lastRate: Float { plan.rate(at: taken - 1) }

    /// Takes the next global step on the worker's replica; returns its loss, or nil when the
    /// worker is done (all steps taken, the job stopping, or a loss that is not finite, which is
    /// booked for the host's divergence check).
    mutating func step(_ t: inout Trainer) -> Float? {
        guard taken < plan.steps else { return nil }
        if taken & 7 == 0 { guard shared.waitWhilePaused() else { return nil } }
        plan.draw(&t)
        let loss = t.gradient(at: x)
        guard loss.isFinite else {
            t.finish(samples: t.batch, loss: loss)
            return nil
        }
        t.apply(rate: plan.rate(at: taken), to: x)
        taken += 1
        return loss
    }
}

/// One worker's part in exact exchanges over a fixed set of replicas (all of them, or a group's):
/// a barrier that all the set's workers pass, the worker's slice of the parameters reduced over
/// the set and written into every replica of it, and the barrier again.
struct ReplicaExchange {
    private(set) var barrier: BarrierPoint
    /// The replicas of the set, in ascending replica order (the order sums are taken in).
    let replicas: [UnsafeMutablePointer<Float>]
    /// The parameters this worker reduces and writes.
    let slice: Range<Int>
    /// Bytes one round reads and writes in replicas other than the worker's own, and those of
    /// them in replicas on another NUMA node than the worker's.
    let bytesPerRound: Int
    let crossNodeBytesPerRound: Int

    /// `rank`: the worker's position among the set's workers, which picks its slice.
    init(_ c: WorkerContext, barrier b: Int, replicas members: [Int], rank: Int) {
        barrier = BarrierPoint(c.shared.barrier(b), participant: c.index)
        replicas = members.map { c.shared.replica($0) }
        slice = SynchronousPlan.slice(rank, of: members.count, count: c.parameterCount)
        let node = c.replicaNodes[c.replica]
        let others = members.filter { $0 != c.replica }
        let remote = others.filter { node >= 0 && c.replicaNodes[$0] >= 0 && c.replicaNodes[$0] != node }
        let perReplica = 2 * slice.count * MemoryLayout<Float>.stride
        bytesPerRound = others.count * perReplica
        crossNodeBytesPerRound = remote.count * perReplica
    }

    /// Barrier (every worker of the set has written its steps), `body` on this worker's slice,
    /// barrier (every slice is written before anyone steps again). False if the job is stopping.
    mutating func run(_ body: (_ replicas: [UnsafeMutablePointer<Float>], _ slice: Range<Int>) -> Void) -> Bool {
        guard barrier.pass() else { return false }
        body(replicas, slice)
        return barrier.pass()
    }

    /// The exact average of the set, written into every replica of it.
    mutating func average() -> Bool {
        run { replicas, slice in SliceAverage.average(replicas, into: replicas, range: slice) }
    }
}

/// What a synchronous worker has exchanged, in its slot (`SharedState.recordExchange`). Worker 0
/// also records the rounds and the seconds it spent in them (barriers included) in the
/// coordinator's slot, which these algorithms leave free, so summaries count averaging rounds.
struct ExchangeLedger {
    let shared: SharedState
    let slot: Int
    let roundSlot: Int?
    private(set) var bytes = 0
    private(set) var crossNode = 0
    private(set) var rounds = 0
    private(set) var seconds = 0.0

    init(_ c: WorkerContext) {
        shared = c.shared
        slot = c.index
        roundSlot = c.index == 0 ? c.spec.workers : nil
    }

    /// Runs `round` on `exchange`, timing it, and books its bytes if it completed.
    mutating func time(_ exchange: inout ReplicaExchange, _ round: (inout ReplicaExchange) -> Bool) -> Bool {
        let (b, c) = (exchange.bytesPerRound, exchange.crossNodeBytesPerRound)
        return time { round(&exchange) ? (b, c) : nil }
    }

    /// Runs `round`, timing it, and books the bytes it returns (nil: the job is stopping).
    mutating func time(_ round: () -> (bytes: Int, crossNode: Int)?) -> Bool {
        let t0 = monotonicSeconds()
        guard let moved = round() else { return false }
        bytes += moved.bytes
        crossNode += moved.crossNode
        rounds += 1
        seconds += monotonicSeconds() - t0
        shared.recordExchange(slot: slot, bytes: bytes, crossNode: crossNode)
        if let s = roundSlot { shared.recordRounds(slot: s, rounds: rounds, seconds: seconds) }
        return true
    }
}
