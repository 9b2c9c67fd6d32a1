/// LAP-SGD's non-blocking in-place averaging of R replicas (design section 5): snapshot each
/// replica s_r = x_r, a = mean over r of s_r, then x_r += a - s_r. Workers keep writing during
/// the round and their updates survive as deltas; if nothing moved, every replica ends equal
/// to the average.
///
/// The round goes chunk by chunk (a few KiB per replica), so the snapshot of a chunk lives in
/// a private L1-sized scratch instead of a second copy of every replica in memory: each byte of
/// the replicas is read once and written once per round, instead of the three streaming passes
/// of the unchunked form. Per chunk it is the same computation.
public struct AveragingKernel {
    public static let chunk = 2048

    public let replicas: [UnsafeMutablePointer<Float>]
    public let count: Int
    private let scratch: UnsafeMutablePointer<Float>

    public init(replicas: [UnsafeMutablePointer<Float>], count: Int) {
        precondition(!replicas.isEmpty)
        self.replicas = replicas
        self.count = count
        scratch = .allocate(capacity: (replicas.count + 1) * Self.chunk)
        scratch.initialize(repeating: 0, count: (replicas.count + 1) * Self.chunk)
    }

    public func deallocate() { scratch.deallocate() }

    /// Bytes one round reads and writes in the replicas.
    public var bytesPerRound: Int { 2 * replicas.count * count * MemoryLayout<Float>.stride }

    /// One round over all parameters.
    public func round() {
        let r = replicas.count
        guard r > 1 else { return }
        let inv = 1 / Float(r)
        let mean = scratch + r * Self.chunk
        var start = 0
        while start < count {
            let n = min(Self.chunk, count - start)
            for k in 0..<r { (scratch + k * Self.chunk).update(from: replicas[k] + start, count: n) }
            mean.update(from: scratch, count: n)
            for k in 1..<r {
                let s = scratch + k * Self.chunk
                for j in 0..<n { mean[j] += s[j] }
            }
            for j in 0..<n { mean[j] *= inv }
            for k in 0..<r {
                let x = replicas[k] + start
                let s = scratch + k * Self.chunk
                for j in 0..<n { x[j] += mean[j] - s[j] }
            }
            start += n
        }
    }

    /// The plain average of the replicas into `out` (for evaluation; replicas untouched).
    public func average(into out: UnsafeMutablePointer<Float>) {
        let inv = 1 / Float(replicas.count)
        out.update(from: replicas[0], count: count)
        for k in 1..<replicas.count {
            let x = replicas[k]
            for j in 0..<count { out[j] += x[j] }
        }
        if replicas.count > 1 { for j in 0..<count { out[j] *= inv } }
    }
}
