#if canImport(Glibc)
import Glibc
#endif

/// DQ-SGD's bit-width schedule (Yan, Huang, Lan, Song, "DQ-SGD: Dynamic Quantization in SGD for
/// Communication-Efficient Distributed Learning", arXiv 2107.14575, 2021; an earlier version is
/// "DQSGD", ICLR 2021 submission), for `--compress dq`: each round, the width of the `Quantizer`
/// codes is chosen from the norm of what is sent and the number of rounds left.
///
/// **The paper's rule** (provenance: only the paper's abstract could be consulted when this was
/// written; the form below is the paper's derivation as reconstructed from its stated method,
/// "minimising the communication cost under the convergence error constraint" on an error bound
/// for strongly convex losses; check the constants against its theorem before quoting them as
/// the paper's). For SGD with step eta on an L-smooth, mu-strongly convex loss, the error
/// after T steps is bounded by a term that decays as alpha^T plus
///     sum_t alpha^(T-1-t) * (L eta^2 / 2) * (sigma^2 + V_t),   alpha = 1 - eta mu,
/// where V_t is the variance the quantizer adds at step t: a round far from the end (T-1-t large)
/// is discounted by alpha^(T-1-t), so its quantization error matters less. For their family of
/// unbiased uniform quantizers with s levels, V_t ~ d ||g_t||^2 / (4 s_t^2), and a round costs
/// about d log2(s_t) bits. Minimising the total bits subject to the error bound staying under a
/// budget (a Lagrangian, one multiplier) gives every round the same share of the budget in the
/// discounted sum, hence
///     s_t  proportional to  ||g_t|| * alpha^((T-1-t)/2)
/// the number of levels grows with the norm of what is sent and as the end approaches (fewer
/// bits early, more late).
///
/// **As implemented** (`bits(energy:roundsLeft:)`). The variance of Lapwing's quantizer is bounded
/// by E_t / (4 s^2) with E_t = sum over blocks of n * max|v|^2 (`Quantizer.blockEnergy`), which
/// plays the part of d ||g_t||^2 (E_t is ||v||^2 times the blocks' peak-to-average ratio). The
/// budget is made dimensionless by measuring E_t against the first round's E_0 (the first nonzero
/// one). With R = rounds left after this one (0 in the last round):
///     s_t  = sqrt( E_t * alpha^R / (4 * errorBudget * E_0) )
///     bits = clamp( ceil(log2(s_t + 1)) + 1, minBits, maxBits )       (+1: the sign)
/// so the discounted variance alpha^R * V_t stays <= errorBudget * E_0 in every round whose bits
/// are not clamped at maxBits. The paper's constants (L, mu, eta, its absolute budget) are not
/// known to a training run; they collapse into the two knobs `errorBudget` and `decay`.
///
/// **Knobs and defaults.**
/// - `errorBudget` (default 5e-3): the per-round quantization variance allowed in the last round,
///   relative to the first round's energy E_0. Smaller means more bits. At R = 0 and E_t = E_0
///   the default gives s = 7.07, 5 bits; as the deltas shrink with the learning rate (E_t < E_0)
///   late rounds take 3-4 bits and early ones 2-3. Measured on Fashion-MNIST's MLP (local-sgd and
///   lap-sgd, `tools/bench_compression.py`): about 3.2 bits a float on average, 9-10x fewer
///   bytes than Float32, where 1e-4 (s = 50 at the end) averaged 4.4 bits, 7.2x: fewer than a
///   fixed 4 bits. The accuracy figures are in the README.
/// - `decay` (alpha = 1 - eta mu, default 0.99): the per-round discount. Each 2 / -log2(alpha)
///   rounds further from the end (138 at 0.99) cost one bit less; closer to 1 means a flatter
///   schedule.
/// - `minBits`, `maxBits` (defaults 2 and 8, within `Quantizer.bitRange`): the clamp. 2 bits is
///   ternary.
public struct DynamicQuantization: Sendable, Equatable {
    public var errorBudget: Double
    public var decay: Double
    public var minBits: Int
    public var maxBits: Int
    /// E_0: the first nonzero energy seen (nil before it).
    public private(set) var referenceEnergy: Double?

    public static let defaultErrorBudget = 5e-3
    public static let defaultDecay = 0.99

    public init(
        errorBudget: Double = DynamicQuantization.defaultErrorBudget, decay: Double = DynamicQuantization.defaultDecay,
        minBits: Int = Quantizer.bitRange.lowerBound, maxBits: Int = Quantizer.bitRange.upperBound
    ) {
        precondition(errorBudget > 0 && errorBudget.isFinite, "DynamicQuantization: errorBudget must be > 0")
        precondition(decay > 0 && decay <= 1, "DynamicQuantization: decay must be in (0, 1]")
        precondition(
            Quantizer.bitRange.contains(minBits) && Quantizer.bitRange.contains(maxBits) && minBits <= maxBits,
            "DynamicQuantization: minBits...maxBits must lie in 2...8")
        self.errorBudget = errorBudget
        self.decay = decay
        self.minBits = minBits
        self.maxBits = maxBits
    }

    /// The levels s_t the rule asks for (before rounding up to a whole width), given this round's
    /// energy and the rounds left after it; records E_0 on the first nonzero energy. 0 while
    /// nothing nonzero has been seen.
    public mutating func levels(energy: Double, roundsLeft: Int) -> Double {
        precondition(roundsLeft >= 0, "DynamicQuantization: roundsLeft must be >= 0")
        if referenceEnergy == nil, energy > 0, energy.isFinite { referenceEnergy = energy }
        guard let e0 = referenceEnergy, energy > 0 else { return 0 }
        guard energy.isFinite else { return .infinity }
        let discount = exp(Double(roundsLeft) * log(decay))
        return (energy * discount / (4 * errorBudget * e0)).squareRoot()
    }

    /// This round's code width (sign included) for a vector of energy `energy`
    /// (`Quantizer.blockEnergy`) with `roundsLeft` rounds after this one.
    public mutating func bits(energy: Double, roundsLeft: Int) -> Int {
        let s = levels(energy: energy, roundsLeft: roundsLeft)
        guard s.isFinite else { return maxBits }
        let b = Int(log2(s + 1).rounded(.up)) + 1
        return min(max(b, minBits), maxBits)
    }

    /// `bits(energy:roundsLeft:)` for the vector `v`.
    public mutating func bits(for v: UnsafeBufferPointer<Float>, roundsLeft: Int) -> Int {
        bits(energy: Quantizer.blockEnergy(v), roundsLeft: roundsLeft)
    }
}
