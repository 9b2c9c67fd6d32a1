/// LAP-SGD's non-blocking in-place averaging of R replicas (design section 5): snapshot each
/// replica s_r = x_r, a = mean over r of s_r, then x_r += a - s_r. Workers keep writing during
/// the round and their updates survive as deltas; if nothing moved, every replica ends equal
/// to the average.
///
/// The round goes eight floats at a time: the snapshot of those eight in every replica lives in
/// registers, the mean is formed there, and each replica gets its delta added right away. Each
/// byte of the replicas is read once and written once per round (the unfused form streams three
/// passes and a second copy of every replica). The window in which a worker's write to the same
/// eight floats could be overwritten is a few nanoseconds instead of the length of a pass.
public struct AveragingKernel {
    public let replicas: [UnsafeMutablePointer<Float>]
    public let count: Int
    private let scratch: UnsafeMutablePointer<SIMD8<Float>>

    public init(replicas: [UnsafeMutablePointer<Float>], count: Int) {
        precondition(!replicas.isEmpty)
        self.replicas = replicas
        self.count = count
        scratch = .allocate(capacity: replicas.count)
        scratch.initialize(repeating: SIMD8(), count: replicas.count)
    }

    public func deallocate() { scratch.deallocate() }

    /// Bytes one round reads and writes in the replicas.
    public var bytesPerRound: Int { 2 * replicas.count * count * MemoryLayout<Float>.stride }

    /// One round over all parameters.
    public func round() {
        let r = replicas.count
        guard r > 1 else { return }
        let body = count & ~7
        if r == 2 {
            round2(replicas[0], replicas[1], body)
        } else {
            roundN(body)
        }
        // The tail that does not fill eight floats.
        for j in body..<count {
            var m: Float = 0
            for k in 0..<r { m += replicas[k][j] }
            m /= Float(r)
            for k in 0..<r { replicas[k][j] = m }
        }
    }

    @inline(__always)
    private func round2(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        let half = SIMD8<Float>(repeating: 0.5)
        var j = 0
        while j < n {
            let px = UnsafeMutableRawPointer(x + j), py = UnsafeMutableRawPointer(y + j)
            let a = px.loadUnaligned(as: SIMD8<Float>.self)
            let b = py.loadUnaligned(as: SIMD8<Float>.self)
            let m = (a + b) * half
            px.storeBytes(of: px.loadUnaligned(as: SIMD8<Float>.self) + (m - a), as: SIMD8<Float>.self)
            py.storeBytes(of: py.loadUnaligned(as: SIMD8<Float>.self) + (m - b), as: SIMD8<Float>.self)
            j += 8
        }
    }

    @inline(__always)
    private func roundN(_ n: Int) {
        let r = replicas.count
        let inv = SIMD8<Float>(repeating: 1 / Float(r))
        var j = 0
        while j < n {
            var sum = SIMD8<Float>()
            for k in 0..<r {
                let s = UnsafeRawPointer(replicas[k] + j).loadUnaligned(as: SIMD8<Float>.self)
                scratch[k] = s
                sum += s
            }
            let m = sum * inv
            for k in 0..<r {
                let p = UnsafeMutableRawPointer(replicas[k] + j)
                p.storeBytes(of: p.loadUnaligned(as: SIMD8<Float>.self) + (m - scratch[k]), as: SIMD8<Float>.self)
            }
            j += 8
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
