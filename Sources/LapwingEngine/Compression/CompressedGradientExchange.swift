import LapwingJob
import LapwingModels

/// A compressed gradient exchange over one shared replica (minibatch SGD's, with `--compress`):
/// each worker writes the codec's message into its exchange buffer (the `.workers` site's two,
/// by step parity), passes the barrier of each phase, and applies the update reduced from the
/// messages alone to its slice of the replica. Two forms, by what the codec sends:
///
/// - **Every coordinate** (`qsgd`, `dq`: unbiased quantizers). The message is the worker's
///   gradient g_w (the trainer's, dense). Worker w decodes the mean (1/W) sum_p Q(g_p) over its
///   slice only, in worker order, a chunk at a time: its slice starts at a quantizer block, and
///   blocks sit at fixed byte offsets, so it reads only the bytes of its slice of each message.
///   Then the uncompressed path's SGD step on the slice (its private momentum, weight decay).
/// - **Some coordinates** (`sketch`: top-k, biased). Sketched SGD in the paper's form (Ivkin et
///   al., NeurIPS 2019, Algorithm 1; `SketchedSGD`): worker w keeps a momentum u_w and an error
///   accumulator v_w (private, d floats each) and, with rho = `--momentum`,
///
///       u_w = rho u_w + g_w;  v_w += lr u_w       (with --nesterov: v_w += lr (g_w + rho u_w))
///       the codec's two phases over v_w: sketches, then exact values at the candidates
///       Δ = sum_w v_w[I] on the k coordinates I of largest |sum|
///       x[I] -= Δ / W                              (each worker on the part of I in its slice)
///       v_w[I] = 0 (error feedback),  u_w[I] = 0 (momentum masking)
///
///   where g_w carries the weight decay (g + wd x). The trainer's own momentum does not also
///   apply: its velocity is left unused. Δ is divided by W so that with k = d and rho = 0 the
///   step is x -= lr * mean_w g_w, minibatch SGD at batch W*B, and `--lr` means what it means
///   without compression; the paper's x -= Δ is the same rule with the rate scaled by W.
///
/// The caller passes a barrier after the update, before anyone reads the replica again (that
/// barrier, not the parity, is what keeps a message from being overwritten while read).
///
/// Bytes, in the uncompressed path's terms with each dense vector replaced by what is moved of
/// the messages: the worker's message written, each of the W messages read over its slice (the
/// whole of each for the sketch: every worker reads every sketch and every candidate's values),
/// and its slice of the replica read and written (for the sketch, the sent coordinates in its
/// slice); those in memory on another NUMA node than the worker's also count as cross-node.
struct CompressedGradientExchange {
    let rank: Int
    let workers: Int
    let count: Int
    /// [parity][worker]
    let buffers: [[ExchangeBuffer]]
    var codec: any ExchangeCodec
    /// The parameters this worker updates: contiguous, starting at a block of the codec.
    let slice: Range<Int>
    let sgd: SGDRule
    let x: UnsafeMutablePointer<Float>
    /// The gradient as a dense vector, when the trainer's is not (sparse steps, weight decay).
    let dense: UnsafeMutablePointer<Float>
    /// One chunk of the mean gradient (quantized form).
    let mean: UnsafeMutablePointer<Float>
    static let chunk = 4 * 512
    /// Sketched SGD's momentum and error accumulator (nil in the quantized form).
    let u: UnsafeMutablePointer<Float>?
    let v: UnsafeMutablePointer<Float>?
    /// Whether each worker's buffers, and the replica, are on another node than this worker.
    let remote: [Bool]
    let replicaRemote: Bool
    private(set) var rounds = 0

    init(_ c: WorkerContext, _ compression: Compression) {
        rank = c.index
        workers = c.spec.workers
        count = c.parameterCount
        let first = c.shared.needs.exchangeVectorsPerWorker - 2
        let (w, d) = (workers, count)
        buffers = (0..<2).map { parity in (0..<w).map { ExchangeBuffer(c.shared.exchange(first + parity, ofWorker: $0), count: d) } }
        codec = compression.codec(dimension: count, participants: workers)
        slice = SynchronousPlan.slice(rank, of: workers, count: count, alignment: max(16, codec.rangeAlignment))
        sgd = c.spec.sgd
        x = c.shared.replica(0)
        dense = .allocate(capacity: count)
        mean = .allocate(capacity: Self.chunk)
        if codec.sendsSubset {
            u = .allocate(capacity: count)
            v = .allocate(capacity: count)
            u!.initialize(repeating: 0, count: count)
            v!.initialize(repeating: 0, count: count)
        } else {
            (u, v) = (nil, nil)
        }
        let me = c.node(ofWorker: c.index)
        remote = (0..<w).map { c.exchangeNode(ofWorker: $0) != me }
        replicaRemote = (c.replicaNodes.first ?? 0) != me
    }

    /// One step's exchange of the gradient in `grad`, computed at the replica: `rate` is the
    /// step's learning rate, `velocity` the trainer's private momentum (used by the quantized
    /// form), `progress` how far training is (0...1). Returns the bytes moved, or nil when the
    /// job is stopping.
    mutating func exchange(
        _ grad: GradientBuffer, rate: Float, velocity: UnsafeMutablePointer<Float>?, progress: Double, barrier: inout TimedBarrier
    ) -> (bytes: Int, crossNode: Int)? {
        let all = buffers[rounds & 1]
        let contribution: UnsafePointer<Float>
        if let u, let v {
            accumulate(grad, rate: rate, u: u, v: v)
            contribution = UnsafePointer(v)
        } else {
            contribution = denseGradient(grad, weightDecay: 0)
        }
        for phase in 0..<codec.phases {
            codec.prepare(phase: phase, all: all)
            codec.write(phase: phase, contribution: contribution, into: all[rank], participant: rank, progress: progress)
            guard barrier.pass() else { return nil }
        }
        codec.reduce(all: all)
        var touched = 0
        if let u, let v {
            codec.addSum(all, scale: -1 / Float(workers), range: slice, into: x)
            let mine = slice
            codec.forEachSent { i in
                u[i] = 0
                v[i] = 0
                if mine.contains(i) { touched += 1 }
            }
        } else {
            applyMean(all, rate: rate, velocity: velocity)
            touched = slice.count
        }
        rounds += 1
        var bytes = all[rank].used
        var crossNode = remote[rank] ? bytes : 0
        for (p, b) in all.enumerated() {
            let n = codec.bytesRead(b, range: slice)
            bytes += n
            if remote[p] { crossNode += n }
        }
        let replica = 2 * touched * MemoryLayout<Float>.stride
        bytes += replica
        if replicaRemote { crossNode += replica }
        return (bytes, crossNode)
    }

    /// The quantized form's update of the slice: the mean of the messages a chunk at a time
    /// (it stays in L1 for the step), then the SGD step with the trainer's momentum.
    private func applyMean(_ all: [ExchangeBuffer], rate: Float, velocity: UnsafeMutablePointer<Float>?) {
        let scale = 1 / Float(workers)
        var lo = slice.lowerBound
        while lo < slice.upperBound {
            let hi = min(slice.upperBound, lo + Self.chunk)
            mean.update(repeating: 0, count: hi - lo)
            codec.addSum(all, scale: scale, range: lo..<hi, into: mean - lo)
            sgd.update(rate, mean, velocity.map { $0 + lo }, x + lo, hi - lo)
            lo = hi
        }
    }

    /// Sketched SGD's u = rho u + g; v += lr u (Nesterov: v += lr (g + rho u)), g with weight decay.
    private func accumulate(_ grad: GradientBuffer, rate: Float, u: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>) {
        let g = denseGradient(grad, weightDecay: sgd.weightDecay)
        let rho = sgd.momentum
        guard sgd.nesterov else {
            SketchedSGD.accumulateMomentum(gradient: g, momentum: u, error: v, count: count, rho: rho, lr: rate)
            return
        }
        for i in 0..<count {
            let ui = rho * u[i] + g[i]
            u[i] = ui
            v[i] += rate * (g[i] + rho * ui)
        }
    }

    /// The gradient as d dense floats, plus wd x: the trainer's own buffer when it is dense and
    /// there is nothing to add, else a copy.
    private func denseGradient(_ grad: GradientBuffer, weightDecay wd: Float) -> UnsafePointer<Float> {
        if grad.isDense && wd == 0 { return UnsafePointer(grad.values) }
        GradientExchange.publish(grad, into: dense)
        if wd != 0 { for i in 0..<count { dense[i] += wd * x[i] } }
        return UnsafePointer(dense)
    }
}
