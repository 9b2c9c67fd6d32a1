import LapwingJob
import LapwingModels

/// The worker's update rule (`SGDRule`, in LapwingJob): SGD with private heavy-ball or Nesterov momentum and decoupled-
/// from-nothing L2 weight decay (added to the gradient), written in place into the shared
/// replica without locks (Hogwild!). Momentum buffers are private and never averaged.
extension SGDRule {
    /// Applies one step over the ranges of `grad` that a step can have written: dense steps
    /// touch every parameter; sparse steps only the touched blocks and the dense tail (their
    /// momentum is updated lazily, where the gradient is).
    @inline(__always)
    public func apply(
        rate lr: Float, gradient grad: GradientBuffer, velocity v: UnsafeMutablePointer<Float>?,
        to x: UnsafeMutablePointer<Float>
    ) {
        let g = grad.values
        grad.forEachRange { start, n in
            self.update(lr, g + start, v.map { $0 + start }, x + start, n)
        }
    }

    /// True when steps on this data can fold momentum into the gradient buffer (`velocityInGradient`).
    public func canFuse(sparse: Bool) -> Bool { momentum > 0 && !nesterov && !sparse }

    /// The step when the gradient buffer already holds v = mu v + g (dense heavy-ball steps with
    /// `grad.accumulate = momentum`): v += wd x; x -= lr v, in one pass.
    @inline(__always)
    public func applyFused(rate lr: Float, velocity grad: GradientBuffer, to x: UnsafeMutablePointer<Float>) {
        let v = grad.values, n = grad.count, wd = weightDecay
        if wd == 0 {
            for i in 0..<n { x[i] -= lr * v[i] }
        } else {
            for i in 0..<n {
                let vi = v[i] + wd * x[i]
                v[i] = vi
                x[i] -= lr * vi
            }
        }
    }

    @inline(__always)
    func update(
        _ lr: Float, _ g: UnsafePointer<Float>, _ v: UnsafeMutablePointer<Float>?, _ x: UnsafeMutablePointer<Float>,
        _ n: Int
    ) {
        let wd = weightDecay, mu = momentum
        guard let v, mu != 0 else {
            if wd == 0 {
                for i in 0..<n { x[i] -= lr * g[i] }
            } else {
                for i in 0..<n { x[i] -= lr * (g[i] + wd * x[i]) }
            }
            return
        }
        if nesterov {
            for i in 0..<n {
                let gi = g[i] + wd * x[i]
                let vi = mu * v[i] + gi
                v[i] = vi
                x[i] -= lr * (gi + mu * vi)
            }
        } else {
            for i in 0..<n {
                let vi = mu * v[i] + g[i] + wd * x[i]
                v[i] = vi
                x[i] -= lr * vi
            }
        }
    }
}
