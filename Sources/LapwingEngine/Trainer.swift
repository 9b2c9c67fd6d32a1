import LapwingCore
import LapwingData
import LapwingJob
import LapwingModels

#if canImport(Glibc)
import Glibc
#endif

/// A worker process's private machinery (design section 4), the same for every algorithm: its
/// seeded order over the training rows, the minibatch buffer, the gradient workspace and
/// buffer, private momentum, and the bookkeeping of a finished step (counters, running loss,
/// the divergence yardstick, the straggler delay). Algorithms' steps use it; it never touches
/// another process's memory except through `SharedState`.
struct Trainer {
    let index: Int
    let spec: JobSpec
    let model: FeedForwardModel
    let data: Dataset
    let shared: SharedState
    /// The minibatch size of one step.
    let batch: Int
    let grad: GradientBuffer
    /// Dense heavy-ball steps keep the velocity in the gradient buffer (folded into the GEMMs).
    let fused: Bool
    /// The private momentum buffer of unfused steps (nil without momentum).
    let velocity: UnsafeMutablePointer<Float>?
    private var rng: SeededGenerator
    /// Whether the order is one the workers share (each keeps its slice of a shared draw), or
    /// this worker's own (it draws only its slice).
    private let sharedOrder: Bool
    private var order: [Int]
    private var cursor: Int
    private var buffer: BatchBuffer
    private var rows: [Int]
    private let workspace: ModelWorkspace
    /// Steps this worker has finished.
    private(set) var steps = 0
    private var lossEMA: Float = .nan
    private let straggle: timespec?

    /// `orderStream`: the stream of the seeded order over the rows (each worker its own by
    /// default; the synchronous algorithms share one so that W workers see the samples one
    /// worker with W times the batch would). `capacity`: the most rows one step draws.
    init(_ c: WorkerContext, model: FeedForwardModel, data: Dataset, trainRows: [Int], orderStream: UInt64? = nil,
         capacity: Int? = nil, fuseMomentum: Bool = true) {
        index = c.index
        spec = c.spec
        self.model = model
        self.data = data
        shared = c.shared
        batch = min(c.spec.batch, trainRows.count)
        let cap = max(batch, capacity ?? batch)
        rng = SeededGenerator(
            seed: c.spec.seed, stream: orderStream ?? (1000 + UInt64(c.index) + 1_000_003 * UInt64(c.incarnation)))
        sharedOrder = orderStream != nil
        order = trainRows
        cursor = order.count
        buffer = BatchBuffer(cols: data.cols, sparse: data.isSparse, capacity: cap)
        rows = [Int](repeating: 0, count: cap)
        workspace = model.makeWorkspace(batchCapacity: cap)
        grad = model.makeGradientBuffer()
        fused = fuseMomentum && c.spec.sgd.canFuse(sparse: data.isSparse)
        if fused { grad.accumulate = c.spec.sgd.momentum }
        if c.spec.sgd.momentum > 0 && !fused {
            let v = UnsafeMutablePointer<Float>.allocate(capacity: model.parameterCount)
            v.initialize(repeating: 0, count: model.parameterCount)
            velocity = v
        } else {
            velocity = nil
        }
        if let s = c.spec.straggler, s.worker == c.index, s.milliseconds > 0 {
            let ns = Int(s.milliseconds * 1e6)
            straggle = timespec(tv_sec: ns / 1_000_000_000, tv_nsec: ns % 1_000_000_000)
        } else {
            straggle = nil
        }
    }

    /// Draws the next `n` rows of this worker's order into the minibatch (n <= capacity).
    @inline(__always)
    mutating func draw(_ n: Int) { draw(n, keep: 0..<n) }

    /// Advances the order by `n` rows and gathers those at positions `keep` of them: a worker's
    /// slice of a minibatch that several workers share (keep.count <= capacity). A worker with an
    /// order of its own draws `keep.count` rows of it.
    @inline(__always)
    mutating func draw(_ n: Int, keep: Range<Int>) {
        let (n, keep) = sharedOrder ? (n, keep) : (keep.count, 0..<keep.count)
        var k = 0
        for i in 0..<n {
            if cursor == order.count {
                order.shuffle(using: &rng)
                cursor = 0
            }
            if keep.contains(i) {
                rows[k] = order[cursor]
                k += 1
            }
            cursor += 1
        }
        data.gather(rows: rows[..<k], into: &buffer)
    }

    /// The gradient of the drawn minibatch at `x`, into `grad`; returns the mean loss.
    @inline(__always)
    mutating func gradient(at x: UnsafeMutablePointer<Float>) -> Float {
        let (model, grad, ws) = (self.model, self.grad, self.workspace)
        let loss = buffer.withBatch { batch in model.gradient(params: x, batch: batch, into: grad, workspace: ws) }
        if steps == 0 { shared.recordFirstLoss(slot: index, loss: loss) }
        return loss
    }

    /// lpp-sgd's partial step: the gradient of the drawn minibatch at `x` for the parameters in
    /// `block` only, into `grad.values[block]` (`FeedForwardModel.partialGradient`); returns the mean loss.
    @inline(__always)
    mutating func partialGradient(at x: UnsafeMutablePointer<Float>, block: Range<Int>) -> Float {
        let (model, grad, ws) = (self.model, self.grad, self.workspace)
        let loss = buffer.withBatch { batch in
            model.partialGradient(params: x, batch: batch, block: block, into: grad, workspace: ws)
        }
        if steps == 0 { shared.recordFirstLoss(slot: index, loss: loss) }
        return loss
    }

    /// Writes the step for the gradient in `grad` into `x` in place: private momentum, weight
    /// decay, `x -= lr * step` (Hogwild!: no lock).
    @inline(__always)
    func apply(rate lr: Float, to x: UnsafeMutablePointer<Float>) {
        if fused {
            spec.sgd.applyFused(rate: lr, velocity: grad, to: x)
        } else {
            spec.sgd.apply(rate: lr, gradient: grad, velocity: velocity, to: x)
        }
    }

    /// Books a finished step of `samples` samples: the worker's counters and running loss (a
    /// loss that is not finite is recorded as it is, for the host's divergence check), then the
    /// straggler delay of `--straggler`.
    @inline(__always)
    mutating func finish(samples: Int, loss: Float) {
        lossEMA = !loss.isFinite ? loss : (lossEMA.isNaN ? loss : 0.98 * lossEMA + 0.02 * loss)
        steps += 1
        shared.recordStep(slot: index, samples: samples, loss: lossEMA)
        if let delay = straggle {
            var ts = delay, left = timespec()
            while nanosleep(&ts, &left) != 0 && errno == EINTR { ts = left }
        }
    }

    func release() { velocity?.deallocate() }
}
