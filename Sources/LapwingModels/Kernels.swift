/// The small vector loops of the models. Plain pointer loops that the optimiser vectorises
/// (this module is built with -Ounchecked in release).
public enum Kernels {
    /// y += a * x
    @inline(__always)
    public static func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { y[i] += a * x[i] }
    }

    /// y += x
    @inline(__always)
    public static func add(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { y[i] += x[i] }
    }

    /// x = max(x, 0)
    @inline(__always)
    public static func relu(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        for i in 0..<n { x[i] = max(x[i], 0) }
    }

    /// d = a > 0 ? d : 0, with a the ReLU output of the forward pass.
    @inline(__always)
    public static func reluBackward(_ d: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ n: Int) {
        for i in 0..<n { d[i] = a[i] > 0 ? d[i] : 0 }
    }

    /// out[j] = beta * out[j] + sum over rows r of m[r * cols + j]
    @inline(__always)
    public static func columnSums(
        _ m: UnsafePointer<Float>, _ rows: Int, _ cols: Int, _ out: UnsafeMutablePointer<Float>, beta: Float = 0
    ) {
        if beta == 0 {
            out.update(from: m, count: cols)
        } else {
            for j in 0..<cols { out[j] = beta * out[j] + m[j] }
        }
        for r in 1..<max(rows, 1) { add(m + r * cols, out, cols) }
    }
}
