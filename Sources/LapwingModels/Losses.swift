#if canImport(Glibc)
import Glibc
#endif

/// The output losses, over `n` rows of `k` outputs. Labels: ±1 for logistic and hinge, the
/// class index for softmax (a binary ±1 label counts as class 1 / class 0), the target for
/// squared loss.
enum Losses {
    @inline(__always)
    static func classOf(_ loss: OutputLoss, _ label: Float) -> Float {
        switch loss {
        case .softmax: return label < 0 ? 0 : label
        case .logistic, .hinge: return label > 0 ? 1 : -1
        case .squared: return label
        }
    }

    /// Sum of the losses, and `delta` = d(mean loss)/d(outputs), n x k.
    static func lossAndDelta(
        _ loss: OutputLoss, _ z: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int, _ k: Int,
        _ delta: UnsafeMutablePointer<Float>
    ) -> Double {
        let scale = 1 / Float(n)
        var sum = 0.0
        switch loss {
        case .softmax:
            for r in 0..<n {
                let zr = z + r * k, dr = delta + r * k
                let c = Int(classOf(loss, y[r]))
                var m = zr[0]
                for j in 1..<k { m = max(m, zr[j]) }
                var s: Float = 0
                for j in 0..<k {
                    let e = expf(zr[j] - m)
                    dr[j] = e
                    s += e
                }
                sum += Double(logf(s) + m - zr[c])
                let inv = scale / s
                for j in 0..<k { dr[j] *= inv }
                dr[c] -= scale
            }
        case .logistic:
            for r in 0..<n {
                let m = y[r] > 0 ? z[r] : -z[r]  // margin y z
                sum += Double(m > 0 ? log1pf(expf(-m)) : -m + log1pf(expf(m)))
                let sig = 1 / (1 + expf(m))  // sigma(-m)
                delta[r] = (y[r] > 0 ? -sig : sig) * scale
            }
        case .hinge:
            for r in 0..<n {
                let yr: Float = y[r] > 0 ? 1 : -1
                let m = yr * z[r]
                sum += Double(max(0, 1 - m))
                delta[r] = m < 1 ? -yr * scale : 0
            }
        case .squared:
            for r in 0..<n {
                let e = z[r] - y[r]
                sum += Double(0.5 * e * e)
                delta[r] = e * scale
            }
        }
        return sum
    }

    /// Sum of the losses only.
    static func loss(_ loss: OutputLoss, _ z: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ n: Int, _ k: Int)
        -> Double
    {
        var sum = 0.0
        switch loss {
        case .softmax:
            for r in 0..<n {
                let zr = z + r * k
                let c = Int(classOf(loss, y[r]))
                var m = zr[0]
                for j in 1..<k { m = max(m, zr[j]) }
                var s: Float = 0
                for j in 0..<k { s += expf(zr[j] - m) }
                sum += Double(logf(s) + m - zr[c])
            }
        case .logistic:
            for r in 0..<n {
                let m = y[r] > 0 ? z[r] : -z[r]
                sum += Double(m > 0 ? log1pf(expf(-m)) : -m + log1pf(expf(m)))
            }
        case .hinge:
            for r in 0..<n { sum += Double(max(0, 1 - (y[r] > 0 ? z[r] : -z[r]))) }
        case .squared:
            for r in 0..<n {
                let e = z[r] - y[r]
                sum += Double(0.5 * e * e)
            }
        }
        return sum
    }
}
