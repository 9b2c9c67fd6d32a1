import LapwingArena
import LapwingCore
import LapwingJob
import LapwingModels

/// Synchronous minibatch SGD: one replica; every step all W workers compute the gradient of
/// their B rows of the shared order at the same point, and one update with the mean of the W
/// gradients is applied, so W workers at batch B train exactly as one worker at batch W*B
/// (within float rounding). The reduction is split over the workers (`SynchronousPlan`):
///
/// 1. worker w writes its gradient, dense, into its exchange vector;
/// 2. barrier (every gradient is written; nobody reads the replica any more this step);
/// 3. worker w sums the W exchange vectors over `slice(w)`, in worker order 0..W-1, scales by
///    1/W, and applies the SGD step to replica 0's `slice(w)` with its private momentum for
///    that slice (momentum is elementwise, so W private slices are one worker's buffer);
/// 4. barrier (the whole replica is updated; exchange vectors may be overwritten);
/// 5. the worker books its B samples.
///
/// Bytes counted per step and worker: its exchange vector written (4d), the W vectors read
/// over its slice (4 W |slice|), and its slice of the replica read and written (8 |slice|);
/// those whose memory is on another NUMA node than the worker's count as cross-node. Worker 0
/// also records the steps as the job's rounds (`averagingRounds`) and the seconds it waited at
/// the two barriers as their seconds (`averagingSeconds`), so the barrier cost per step is
/// `averagingSeconds / averagingRounds`.
///
/// With `--compress` (`CompressedGradientExchange`) each worker's contribution is its gradient:
/// steps 1-3 become the codec's message written into the worker's exchange buffer, a barrier per
/// phase, and the update of the worker's slice reduced from the messages alone: for `qsgd` and
/// `dq` the mean of the quantized gradients with the SGD step above; for `sketch` Sketched SGD
/// (momentum and error accumulation in the worker, momentum masking), which replaces the
/// trainer's momentum. Step 4's barrier stays. Slices then start at the codec's blocks.
struct Minibatch: TrainingAlgorithm {
    static let name = "minibatch"
    static let summary =
        "synchronous minibatch SGD: all W gradients at the same point, averaged in worker order, one update (= batch W*B)"
    static let knobs: [Knob] = []
    static let compressionSite: CompressionSite? = .workers

    /// Whether the spec compresses the exchange (its buffers then replace the dense vector).
    let compressed: Bool

    init(spec: JobSpec, knobs: Knobs) throws(LapwingError) {
        if let r = spec.replicas, r != 1 {
            throw LapwingError(.invalidArgument, "--replicas \(r): minibatch trains one model")
        }
        compressed = try Compressors.resolve(spec) != nil
    }

    func replicaCount(numaNodes: Int) throws(LapwingError) -> Int { 1 }

    func arenaNeeds(replicas: Int) -> ArenaNeeds { ArenaNeeds(exchangeVectorsPerWorker: compressed ? 0 : 1, barriers: 1) }

    func trainerShape(_ c: WorkerContext) -> TrainerShape { SynchronousPlan.trainerShape(c) }

    func workerStep(_ c: WorkerContext) -> any WorkerStep { MinibatchStep(c) }
}

/// One worker of `Minibatch` (see there for the step).
struct MinibatchStep: WorkerStep {
    let plan: SynchronousPlan
    let shared: SharedState
    let sgd: SGDRule
    let x: UnsafeMutablePointer<Float>
    /// This worker's exchange vector, and every worker's in worker order.
    let mine: UnsafeMutablePointer<Float>
    let buffers: [UnsafeMutablePointer<Float>]
    let slice: Range<Int>
    /// The mean gradient of one chunk of the slice (private).
    let mean: UnsafeMutablePointer<Float>
    static let chunk = 2048
    /// Worker 0 times its waits (its own arrival to the round's completion).
    var barrier: TimedBarrier
    /// The exchange with `--compress` (then `mine`, `buffers` and `slice` go unused).
    var compressed: CompressedGradientExchange?
    var step = 0
    let bytesPerStep: Int
    let crossPerStep: Int
    var bytes = 0
    var cross = 0

    init(_ c: WorkerContext) {
        plan = SynchronousPlan(c)
        shared = c.shared
        sgd = c.spec.sgd
        x = c.shared.replica(0)
        mine = c.shared.exchange(0, ofWorker: c.index)
        buffers = (0..<c.spec.workers).map { c.shared.exchange(0, ofWorker: $0) }
        slice = plan.slice(c.index)
        mean = .allocate(capacity: Self.chunk)
        barrier = TimedBarrier(BarrierPoint(c.shared.barrier(0), participant: c.index), timed: c.index == 0)
        compressed = c.compression.map { CompressedGradientExchange(c, $0) }
        let d = c.parameterCount, s = slice.count, me = c.node(ofWorker: c.index)
        bytesPerStep = 4 * (d + plan.workers * s + 2 * s)
        var crossing = 0
        if c.exchangeNode(ofWorker: c.index) != me { crossing += 4 * d }
        for w in 0..<plan.workers where c.exchangeNode(ofWorker: w) != me { crossing += 4 * s }
        if (c.replicaNodes.first ?? 0) != me { crossing += 8 * s }
        crossPerStep = crossing
    }

    mutating func step(_ t: inout Trainer) -> Bool {
        guard step < plan.steps else { return false }
        if step & 7 == 0 { guard shared.waitWhilePaused() else { return false } }
        plan.draw(&t)
        let loss = t.gradient(at: x)
        guard loss.isFinite else {
            // Recorded for the host's divergence check, which stops the job (and the others' barrier).
            t.finish(samples: 0, loss: loss)
            return false
        }
        let rate = plan.rate(at: step)
        var moved = (bytes: bytesPerStep, crossNode: crossPerStep)
        if compressed != nil {
            let progress = Double(step) / Double(plan.steps)
            guard let m = compressed!.exchange(t.grad, rate: rate, velocity: t.velocity, progress: progress, barrier: &barrier) else {
                return false
            }
            moved = m
        } else {
            GradientExchange.publish(t.grad, into: mine)
            guard barrier.pass() else { return false }
            // The mean over the slice a chunk at a time (it stays in L1 for the update), summed in
            // worker order: the same operations per parameter as one pass, fewer bytes through memory.
            var lo = slice.lowerBound
            while lo < slice.upperBound {
                let hi = min(slice.upperBound, lo + Self.chunk)
                SliceAverage.average(buffers, into: [mean - lo], range: lo..<hi)
                sgd.update(rate, mean, t.velocity.map { $0 + lo }, x + lo, hi - lo)
                lo = hi
            }
        }
        guard barrier.pass() else { return false }
        step += 1
        bytes += moved.bytes
        cross += moved.crossNode
        shared.recordExchange(slot: plan.index, bytes: bytes, crossNode: cross)
        if plan.index == 0 { shared.recordRounds(slot: plan.workers, rounds: step, seconds: barrier.waited) }
        t.finish(samples: t.batch, loss: loss)
        return true
    }
}

/// Writing a worker's gradient where others read it.
enum GradientExchange {
    /// Copies `grad` into `target` as a dense vector of `grad.count` floats: a sparse step's
    /// buffer holds valid values only in its ranges (`forEachRange`), so everything else is
    /// written as zero.
    static func publish(_ grad: GradientBuffer, into target: UnsafeMutablePointer<Float>) {
        let g = grad.values
        if grad.isDense {
            target.update(from: g, count: grad.count)
            return
        }
        target.update(repeating: 0, count: grad.sparseEnd)
        grad.forEachRange { start, n in (target + start).update(from: g + start, count: n) }
    }
}
