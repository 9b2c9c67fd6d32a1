import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// A learning-rate schedule over training progress (0 at the start, 1 at the end), driven by
/// the node-level step count. Every schedule starts with a linear warm-up from 0 over
/// `warmup` of training.
public struct LearningRateSchedule: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable {
        case constant
        /// Multiplied by `stepFactor` at each of `stepAt` (fractions of training).
        case step
        /// Half a cosine from the base rate down to `minimum`.
        case cosine
        /// A straight line from the base rate down to `minimum`.
        case linear
    }

    public static let fields = ["kind", "base", "warmup", "stepAt", "stepFactor", "minimum"]

    public var kind: Kind
    public var base: Float
    public var warmup: Double
    public var stepAt: [Double]
    public var stepFactor: Float
    public var minimum: Float

    public init(
        kind: Kind = .constant, base: Float, warmup: Double = 0, stepAt: [Double] = [0.5, 0.75],
        stepFactor: Float = 0.1, minimum: Float = 0
    ) {
        self.kind = kind
        self.base = base
        self.warmup = warmup
        self.stepAt = stepAt
        self.stepFactor = stepFactor
        self.minimum = minimum
    }

    public func validate() throws(LapwingError) {
        guard base.isFinite, base > 0 else {
            throw LapwingError(.invalidArgument, "--lr \(base): the learning rate must be a positive number")
        }
        guard warmup >= 0, warmup < 1 else {
            throw LapwingError(.invalidArgument, "--warmup \(warmup): must be a fraction of training in [0, 1)")
        }
        guard stepAt.allSatisfy({ $0 > 0 && $0 < 1 }) else {
            throw LapwingError(.invalidArgument, "--lr-step-at: every point must be a fraction of training in (0, 1)")
        }
    }

    /// The rate at `progress` (clamped to [0, 1]).
    @inline(__always)
    public func rate(at progress: Double) -> Float {
        let p = min(max(progress, 0), 1)
        var r: Float
        switch kind {
        case .constant:
            r = base
        case .step:
            r = base
            for s in stepAt where p >= s { r *= stepFactor }
        case .cosine:
            let t = warmup < 1 ? max(0, (p - warmup) / (1 - warmup)) : 1
            r = minimum + (base - minimum) * Float(0.5 * (1 + cos(Double.pi * t)))
        case .linear:
            let t = warmup < 1 ? max(0, (p - warmup) / (1 - warmup)) : 1
            r = minimum + (base - minimum) * Float(1 - t)
        }
        if warmup > 0, p < warmup { r *= Float(p / warmup) }
        return r
    }
}
