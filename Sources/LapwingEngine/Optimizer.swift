import LapwingModels

/// The worker's update rule: SGD with private heavy-ball or Nesterov momentum and decoupled-
/// from-nothing L2 weight decay (added to the gradient), written in place into the shared
/// replica without locks (Hogwild!). Momentum buffers are private and never averaged.
public struct SGDRule: Codable, Sendable, Equatable {
    public var momentum: Float
    public var nesterov: Bool
    public var weightDecay: Float

    public init(momentum: Float = 0.9, nesterov: Bool = false, weightDecay: Float = 0) {
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
    }

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
