import LapwingCore
import LapwingJob

/// SlowMo (Wang, Tantia, Ballas, Rabbat, "SlowMo: Improving Communication-Efficient Distributed
/// SGD with Slow Momentum", ICLR 2020; code fairscale's SlowMoDistributedDataParallel) over local
/// SGD: one replica per worker, tau private steps, then the outer step on the exact average a of
/// the replicas:
///
///     u  = beta * u + (x0 - a) / lr
///     x0 = x0 - alpha * lr * u
///     every replica = x0
///
/// `lr` is the base (inner) optimizer's learning rate at that point, gamma_t of the paper's
/// Algorithm 1: the rate of the step that ends the period, as fairscale reads the optimizer's
/// current `lr` after that step. So with alpha = 1 and beta = 0, x0 = a: local SGD with K = tau.
/// If that rate is 0 (a schedule's warm-up start), the pseudo-gradient has no scale: x0 = a and u
/// keeps its value. The last step ends with an outer step too (over a shorter period).
///
/// The slow state lives in the arena, split like the averaging: worker w owns slice w of x0 and
/// u (the parameters it averages), kept in vectors 1 (x0) and 2 (u) of its own replica, on its
/// own node. Only w reads or writes that slice, always between the round's two barriers, so x0
/// and u are consistent without further synchronisation; at the start w copies its slice of
/// the initial model (its replica, before anyone exchanges) into x0 and zeroes u. Bytes are
/// those of the average (2 * (W-1) * d/W floats per worker and round); the slow state is local.
/// Private momentum buffers are kept across outer steps (never averaged, never reset).
///
/// With `--compress`, the average is the compressed round's common anchor a (`CompressedReplicaExchange`)
/// and every worker keeps the whole slow state (x0 and u in its replica's vectors 1 and 2, the
/// same bits in every worker): after the outer step the anchor becomes x0 and each replica x0
/// plus what it has not yet sent (x - a before the step), so nothing unsent is lost.
struct SlowMo: TrainingAlgorithm {
    static let name = "slowmo"
    static let summary =
        "local SGD with an outer (slow) momentum step on the averaged replicas every tau steps (Wang et al. 2020)"
    static let knobs: [Knob] = [
        Knob("period", default: 12, range: 1...1_000_000, integer: true, help: "tau: private steps between two outer steps"),
        Knob("slow-lr", default: 1, range: 0...10, help: "alpha: the outer (slow) learning rate"),
        Knob("slow-momentum", default: 0.5, range: 0...0.999, help: "beta: the outer (slow) momentum"),
    ]

    let workers: Int
    let period: Int
    let slowRate: Float
    let slowMomentum: Float

    init(spec: JobSpec, knobs: Knobs) throws(LapwingError) {
        try LocalSGD.requireReplicaPerWorker(spec, name: Self.name)
        workers = spec.workers
        period = knobs.int("period")
        slowRate = Float(knobs.double("slow-lr"))
        slowMomentum = Float(knobs.double("slow-momentum"))
        if spec.machine != nil, let c = spec.compression, c.name != "none" {
            throw LapwingError(
                .unsupported, "--compress \(c.name) with --mpi: slowmo's compressed outer step keeps each worker's slow state, "
                    + "which rounds across machines would leave behind",
                detail: "run slowmo across machines without --compress, or local-sgd or hier-avg with it")
        }
    }

    static let compressionSite: CompressionSite? = .workers

    func replicaCount(numaNodes: Int) throws(LapwingError) -> Int { workers }

    /// Vector 0: the replica; 1: the slow model x0; 2: the slow momentum u (each worker's slice).
    func arenaNeeds(replicas: Int) -> ArenaNeeds { ArenaNeeds(vectorsPerReplica: 3, barriers: 1) }

    func trainerShape(_ c: WorkerContext) -> TrainerShape { LocalSteps.trainerShape(c) }

    func workerStep(_ c: WorkerContext) -> any WorkerStep {
        SlowMoStep(c, period: period, alpha: slowRate, beta: slowMomentum)
    }

    /// Across machines (`--mpi`), the outer step is taken on the average of every machine's
    /// replicas: the machine's own average, then the machines' (the workers waiting), then the
    /// outer step on that, identical on every machine.
    func machineLevel() -> MachineLevel? { .lockstep }
}

/// A SlowMo worker: tau private steps, then the outer step on its slice.
struct SlowMoStep: WorkerStep {
    var local: LocalSteps
    var exchange: ReplicaExchange
    var compressed: CompressedReplicaExchange?
    var machine: MachineRoundPoint?
    var ledger: ExchangeLedger
    let period: Int
    let alpha: Float
    let beta: Float
    /// This worker's slice of the slow model and the slow momentum (indexed like the parameters).
    let slow: UnsafeMutablePointer<Float>
    let momentum: UnsafeMutablePointer<Float>
    var sinceAverage = 0

    init(_ c: WorkerContext, period: Int, alpha: Float, beta: Float) {
        local = LocalSteps(c)
        exchange = ReplicaExchange(c, barrier: 0, replicas: Array(0..<c.replicaWorkers.count), rank: c.index)
        ledger = ExchangeLedger(c)
        machine = MachineRoundPoint(c)
        self.period = period
        self.alpha = alpha
        self.beta = beta
        slow = c.shared.vector(1, ofReplica: c.replica)
        momentum = c.shared.vector(2, ofReplica: c.replica)
        compressed = c.compression.map {
            CompressedReplicaExchange(c, $0, barrier: 0, members: Array(0..<c.spec.workers), rank: c.index)
        }
        let s = compressed == nil ? exchange.slice : 0..<c.parameterCount
        if !s.isEmpty {
            (slow + s.lowerBound).update(from: local.x + s.lowerBound, count: s.count)
            (momentum + s.lowerBound).update(repeating: 0, count: s.count)
        }
    }

    mutating func step(_ t: inout Trainer) -> Bool {
        guard let loss = local.step(&t) else { return false }
        sinceAverage += 1
        if sinceAverage >= period || local.isLast {
            sinceAverage = 0
            let (lr, alpha, beta, slow, momentum) = (local.lastRate, alpha, beta, slow, momentum)
            if compressed != nil {
                let progress = local.progress
                guard ledger.time({
                    guard let moved = compressed!.average(progress: progress) else { return nil }
                    SlowMoStep.outerStep(
                        replica: compressed!.x, anchor: compressed!.anchor, slow: slow, momentum: momentum,
                        count: compressed!.count, lr: lr, alpha: alpha, beta: beta)
                    return moved
                }) else { return false }
            } else if machine != nil {
                // The machine's average, the machines', then the outer step on that (the
                // replicas are equal, so the step's own average changes nothing).
                guard ledger.time(&exchange, { $0.average() }),
                    machine!.run(progress: local.progress, last: local.isLast),
                    exchange.run({ replicas, slice in
                        SlowMoStep.outerStep(replicas, slow: slow, momentum: momentum, range: slice, lr: lr, alpha: alpha, beta: beta)
                    })
                else { return false }
            } else { guard ledger.time(&exchange, { e in
                e.run { replicas, slice in
                    SlowMoStep.outerStep(replicas, slow: slow, momentum: momentum, range: slice, lr: lr, alpha: alpha, beta: beta)
                }
            }) else { return false } }
        }
        t.finish(samples: t.batch, loss: loss)
        return true
    }

    /// Over `range`: a = the mean of `replicas` (summed in their order, as `SliceAverage`);
    /// u = beta u + (x0 - a) / lr; x0 -= alpha lr u; every replica = x0.
    static func outerStep(
        _ replicas: [UnsafeMutablePointer<Float>], slow x0: UnsafeMutablePointer<Float>, momentum u: UnsafeMutablePointer<Float>,
        range: Range<Int>, lr: Float, alpha: Float, beta: Float
    ) {
        guard lr > 0 else {
            SliceAverage.average(replicas, into: replicas + [x0], range: range)
            return
        }
        let scale = 1 / Float(replicas.count), inverse = 1 / lr, step = alpha * lr
        var i = range.lowerBound
        let end = range.upperBound
        while i + 8 <= end {
            var a = UnsafeRawPointer(replicas[0] + i).loadUnaligned(as: SIMD8<Float>.self)
            for k in 1..<replicas.count { a += UnsafeRawPointer(replicas[k] + i).loadUnaligned(as: SIMD8<Float>.self) }
            a *= scale
            let x = UnsafeRawPointer(x0 + i).loadUnaligned(as: SIMD8<Float>.self)
            let v = beta * UnsafeRawPointer(u + i).loadUnaligned(as: SIMD8<Float>.self) + (x - a) * inverse
            let y = x - step * v
            UnsafeMutableRawPointer(u + i).storeBytes(of: v, as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(x0 + i).storeBytes(of: y, as: SIMD8<Float>.self)
            for r in replicas { UnsafeMutableRawPointer(r + i).storeBytes(of: y, as: SIMD8<Float>.self) }
            i += 8
        }
        while i < end {
            var a = replicas[0][i]
            for k in 1..<replicas.count { a += replicas[k][i] }
            a *= scale
            let v = beta * u[i] + (x0[i] - a) * inverse
            let y = x0[i] - step * v
            u[i] = v
            x0[i] = y
            for r in replicas { r[i] = y }
            i += 1
        }
    }

    /// The outer step of a compressed round, over the whole model: with a the common anchor,
    /// u = beta u + (x0 - a) / lr; x0 -= alpha lr u; then x = x0 + (x - a) and a = x0.
    static func outerStep(
        replica x: UnsafeMutablePointer<Float>, anchor a: UnsafeMutablePointer<Float>, slow x0: UnsafeMutablePointer<Float>,
        momentum u: UnsafeMutablePointer<Float>, count: Int, lr: Float, alpha: Float, beta: Float
    ) {
        for i in 0..<count {
            let unsent = x[i] - a[i]
            if lr > 0 {
                let v = beta * u[i] + (x0[i] - a[i]) / lr
                u[i] = v
                x0[i] -= alpha * lr * v
            } else {
                x0[i] = a[i]
            }
            a[i] = x0[i]
            x[i] = x0[i] + unsent
        }
    }
}
