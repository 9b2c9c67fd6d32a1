import Foundation
import LapwingCore
import Testing

@testable import LapwingEngine

/// The QSGD-style quantizer and DQ-SGD's bit schedule (Compression/), as plain unit tests.
@Suite struct QuantizerTests {
    /// A vector over two full blocks and a short one, values in [-amp, amp] with a few zeros.
    static func randomVector(_ count: Int, seed: UInt64, amp: Float = 1) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        return (0..<count).map { i in i % 97 == 0 ? 0 : (rng.nextUnitFloat() * 2 - 1) * amp }
    }

    static func quantize(_ v: [Float], bits: Int, seed: UInt64) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Quantizer.compressedBytes(count: v.count, bits: bits))
        v.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBytes { Quantizer.quantize(src, bits: bits, seed: seed, into: $0) }
        }
        return out
    }

    static func dequantize(_ packed: [UInt8], count: Int, bits: Int) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        packed.withUnsafeBytes { p in out.withUnsafeMutableBufferPointer { Quantizer.dequantize(p, bits: bits, into: $0) } }
        return out
    }

    /// Per float, the exact variance of its quantization: (m/s)^2 p(1-p).
    static func elementVariance(_ v: [Float], bits: Int) -> [Double] {
        let s = Double(Quantizer.levels(bits: bits))
        var out = [Double](repeating: 0, count: v.count)
        var start = 0
        while start < v.count {
            let end = min(start + Quantizer.blockSize, v.count)
            let m = Double(v[start..<end].map { abs($0) }.max()!)
            for i in start..<end where m > 0 {
                let x = Double(abs(v[i])) * s / m
                let f = x - x.rounded(.down)
                out[i] = (m / s) * (m / s) * f * (1 - f)
            }
            start = end
        }
        return out
    }

    /// Unbiased: over 2000 draws (seeds 1...2000), the mean of the dequantized vectors is within 3
    /// standard errors (from the exact per-float variance) of the input for >= 99% of the floats
    /// (0.27% expected outside), within 5 for all, and exact where the variance is 0.
    @Test(arguments: [2, 4, 8])
    func quantizerIsUnbiased(bits: Int) {
        let d = 2 * Quantizer.blockSize + 77
        let v = Self.randomVector(d, seed: 42)
        let draws = 2000
        var sum = [Double](repeating: 0, count: d)
        var deq = [Float](repeating: 0, count: d)
        for k in 1...draws {
            let packed = Self.quantize(v, bits: bits, seed: UInt64(k))
            packed.withUnsafeBytes { p in deq.withUnsafeMutableBufferPointer { Quantizer.dequantize(p, bits: bits, into: $0) } }
            for i in 0..<d { sum[i] += Double(deq[i]) }
        }
        let variance = Self.elementVariance(v, bits: bits)
        var outside3 = 0
        for i in 0..<d {
            let err = abs(sum[i] / Double(draws) - Double(v[i]))
            let se = (variance[i] / Double(draws)).squareRoot()
            if se == 0 {
                #expect(err < 1e-6, "float \(i): \(v[i]) has no variance but mean is off by \(err)")
                continue
            }
            if err > 3 * se { outside3 += 1 }
            #expect(err <= 5 * se + 1e-7, "float \(i): mean off by \(err), 5 SE = \(5 * se)")
        }
        #expect(Double(outside3) <= 0.01 * Double(d), "\(outside3) of \(d) floats beyond 3 SE")
    }

    /// The mean squared error over 1000 draws matches the exact E||Q(v)-v||^2 within 5%, and that
    /// is within QSGD's bound min(n/s^2, sqrt(n)/s)||v||^2 (per block) and n m^2/(4 s^2).
    @Test(arguments: [2, 3, 4, 8])
    func varianceMatchesTheQSGDBound(bits: Int) {
        let d = 2 * Quantizer.blockSize + 77
        let v = Self.randomVector(d, seed: 7)
        let draws = 1000
        var mse = 0.0
        for k in 1...draws {
            let deq = Self.dequantize(Self.quantize(v, bits: bits, seed: UInt64(1000 + k)), count: d, bits: bits)
            for i in 0..<d { mse += Double(deq[i] - v[i]) * Double(deq[i] - v[i]) }
        }
        mse /= Double(draws)
        let (exact, bound) = v.withUnsafeBufferPointer {
            (Quantizer.expectedVariance($0, bits: bits), Quantizer.varianceBound($0, bits: bits))
        }
        #expect(abs(mse - exact) <= 0.05 * exact, "measured \(mse), expected \(exact)")
        #expect(exact <= bound, "expected variance \(exact) above the bound \(bound)")
        let s = Double(Quantizer.levels(bits: bits))
        let norm2 = v.reduce(0.0) { $0 + Double($1) * Double($1) }
        #expect(exact <= min(Double(d) / (s * s), Double(d).squareRoot() / s) * norm2)
    }

    /// Values on the grid come back exactly (every width, counts around group and block edges);
    /// others come back within one level of the block's scale; the same seed gives the same bytes;
    /// the writes stay inside compressedBytes; add(scaled:) adds factor * dequantized.
    @Test(arguments: Array(Quantizer.bitRange))
    func packUnpackRoundTrip(bits: Int) {
        let s = Quantizer.levels(bits: bits)
        for count in [1, 7, 8, 9, 511, 512, 513, 1030] {
            // On the grid: integers in -s...s with one float at s, so the scale is s and x = l.
            var rng = SeededGenerator(seed: UInt64(count * 10 + bits))
            var grid = (0..<count).map { _ in Float(rng.nextIndex(2 * s + 1) - s) }
            for b in stride(from: 0, to: count, by: Quantizer.blockSize) { grid[b] = Float(s) }
            let bytes = Quantizer.compressedBytes(count: count, bits: bits)
            var out = [UInt8](repeating: 0xA5, count: bytes + 16)
            grid.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBytes { Quantizer.quantize(src, bits: bits, seed: 3, into: $0) }
            }
            #expect(out[bytes...].allSatisfy { $0 == 0xA5 }, "quantize wrote past compressedBytes (count \(count))")
            let packed = Array(out[..<bytes])
            #expect(Self.dequantize(packed, count: count, bits: bits) == grid, "grid values not exact (count \(count))")

            // Off the grid: within one level; deterministic per seed.
            let v = Self.randomVector(count, seed: UInt64(count), amp: 3)
            let a = Self.quantize(v, bits: bits, seed: 9)
            #expect(a == Self.quantize(v, bits: bits, seed: 9))
            let deq = Self.dequantize(a, count: count, bits: bits)
            for start in stride(from: 0, to: count, by: Quantizer.blockSize) {
                let end = min(start + Quantizer.blockSize, count)
                let step = v[start..<end].map { abs($0) }.max()! / Float(s)
                for i in start..<end {
                    #expect(abs(deq[i] - v[i]) <= step * 1.0001 + 1e-6, "count \(count) float \(i)")
                }
            }
            var acc = (0..<count).map { Float($0 % 5) }
            a.withUnsafeBytes { p in acc.withUnsafeMutableBufferPointer { Quantizer.add(scaled: -0.5, from: p, bits: bits, into: $0) } }
            for i in 0..<count { #expect(abs(acc[i] - (Float(i % 5) - 0.5 * deq[i])) <= 1e-5) }
        }
    }

    /// A NaN or an infinity makes its block dequantize to NaN; the other blocks come back as usual.
    @Test func nonFiniteInputPoisonsOnlyItsBlock() {
        for bad in [Float.nan, .infinity, -.infinity] {
            var v = Self.randomVector(3 * Quantizer.blockSize, seed: 2)
            v[Quantizer.blockSize + 10] = bad
            let deq = Self.dequantize(Self.quantize(v, bits: 4, seed: 1), count: v.count, bits: 4)
            let block = Quantizer.blockSize..<(2 * Quantizer.blockSize)
            #expect(deq[block].allSatisfy { $0.isNaN }, "\(bad)")
            for i in 0..<v.count where !block.contains(i) {
                #expect(abs(deq[i] - v[i]) <= 1.0 / 7 + 1e-6)
            }
        }
    }

    /// blocks * 4 bytes of scale + ceil(count/8) * bits bytes of codes.
    @Test func compressedSizeFormula() {
        #expect(Quantizer.compressedBytes(count: 0, bits: 4) == 0)
        #expect(Quantizer.compressedBytes(count: 1, bits: 2) == 4 + 2)
        #expect(Quantizer.compressedBytes(count: 512, bits: 8) == 4 + 512)
        #expect(Quantizer.compressedBytes(count: 513, bits: 3) == 8 + 65 * 3)
        // mlp:784-256-10 has 203,530 parameters: 398 blocks, 25,442 groups of 8.
        #expect(Quantizer.compressedBytes(count: 203_530, bits: 4) == 398 * 4 + 25_442 * 4)
        #expect(Quantizer.compressedBytes(count: 203_530, bits: 8) == 398 * 4 + 25_442 * 8)
        for bits in Quantizer.bitRange {
            let ratio = Double(4 * 203_530) / Double(Quantizer.compressedBytes(count: 203_530, bits: bits))
            #expect(abs(ratio - 32 / (Double(bits) + 32 / 512)) < 0.01, "bits \(bits): ratio \(ratio)")
        }
    }

    /// With error feedback over 300 rounds of changing, biased updates: sum(sent) + residual ==
    /// sum(true) (float rounding aside), and the residual stays under its bound V/(s-1) (V the
    /// largest |update|: |residual| <= max|v + residual|/s each round), while without feedback the
    /// gap is a random walk, larger. Not at 2 bits: ternary (s = 1) is no contraction (see
    /// `quantizeWithFeedback`).
    @Test(arguments: [3, 4, 8])
    func errorFeedbackTracksTheTrueSum(bits: Int) {
        let d = 1500
        let rounds = 300
        let s = Float(Quantizer.levels(bits: bits))
        var residual = [Float](repeating: 0, count: d)
        var sumTrue = [Double](repeating: 0, count: d)
        var sumSent = [Double](repeating: 0, count: d)
        var sumPlain = [Double](repeating: 0, count: d)
        var maxResidual: Float = 0
        var maxUpdate: Float = 0
        var drift = SeededGenerator(seed: 5)
        let bias = (0..<d).map { _ in (drift.nextUnitFloat() * 2 - 1) * 0.2 }
        for t in 0..<rounds {
            var v = Self.randomVector(d, seed: UInt64(100 + t), amp: 1 + Float(t % 7) * 0.1)
            for i in 0..<d { v[i] += bias[i] }
            maxUpdate = max(maxUpdate, v.map { abs($0) }.max()!)
            var packed = [UInt8](repeating: 0, count: Quantizer.compressedBytes(count: d, bits: bits))
            v.withUnsafeBufferPointer { src in
                residual.withUnsafeMutableBufferPointer { r in
                    packed.withUnsafeMutableBytes { Quantizer.quantizeWithFeedback(src, residual: r, bits: bits, seed: UInt64(t), into: $0) }
                }
            }
            let sent = Self.dequantize(packed, count: d, bits: bits)
            let plain = Self.dequantize(Self.quantize(v, bits: bits, seed: UInt64(t)), count: d, bits: bits)
            for i in 0..<d {
                sumTrue[i] += Double(v[i])
                sumSent[i] += Double(sent[i])
                sumPlain[i] += Double(plain[i])
            }
            maxResidual = max(maxResidual, residual.map { abs($0) }.max()!)
        }
        var gapFeedback = 0.0
        var gapPlain = 0.0
        var identity = 0.0
        for i in 0..<d {
            gapFeedback = max(gapFeedback, abs(sumTrue[i] - sumSent[i]))
            gapPlain = max(gapPlain, abs(sumTrue[i] - sumPlain[i]))
            identity = max(identity, abs(sumTrue[i] - sumSent[i] - Double(residual[i])))
        }
        let bound = maxUpdate / (s - 1) * 1.001
        #expect(identity < 1e-3, "sum(sent) + residual differs from sum(true) by \(identity)")
        #expect(maxResidual <= bound, "residual reached \(maxResidual), bound \(bound)")
        #expect(gapFeedback <= Double(bound) + 1e-3)
        #expect(gapPlain > 2 * gapFeedback, "without feedback \(gapPlain), with \(gapFeedback)")
    }

    /// DQ's width on a synthetic run: bounded by min/max, nonincreasing in rounds left (for a
    /// given energy), nondecreasing in energy, the documented value at the end (s = 50: 7 bits),
    /// one bit less every 2/-log2(decay) rounds further out, and fewer bits early than late on a
    /// decaying norm sequence.
    @Test func dynamicQuantizationFollowsItsSchedule() {
        // The default budget (5e-3): s = sqrt(1/0.02) = 7.07 at the end, 5 bits; 4 at 0.9 E_0.
        var byDefault = DynamicQuantization()
        #expect(byDefault.bits(energy: 1000, roundsLeft: 0) == 5)
        #expect(byDefault.bits(energy: 900, roundsLeft: 0) == 4)
        var dq = DynamicQuantization(errorBudget: 1e-4)
        let e0 = 1000.0
        #expect(dq.bits(energy: e0, roundsLeft: 0) == 7)  // records E_0; sqrt(1/(4e-4)) = 50
        #expect(dq.referenceEnergy == e0)
        for energy in [e0 * 1e-4, e0 * 0.01, e0 * 0.3, e0, e0 * 10, e0 * 1e4] {
            var last = Int.max
            for r in stride(from: 0, through: 5000, by: 10) {
                let b = dq.bits(energy: energy, roundsLeft: r)
                #expect((2...8).contains(b))
                #expect(b <= last, "energy \(energy): \(b) bits at \(r) rounds left, \(last) closer to the end")
                last = b
            }
            #expect(dq.bits(energy: energy, roundsLeft: 5000) == 2)
        }
        for r in [0, 100, 500] {
            var last = 0
            for k in -8...8 {
                let b = dq.bits(energy: e0 * pow(2, Double(k)), roundsLeft: r)
                #expect(b >= last)
                last = b
            }
        }
        // s = 50 * 0.99^(R/2) falls to 31 (log2(s+1) = 5: 6 bits) at R = 95.2, to 15 (5 bits) at 239.6.
        #expect(dq.bits(energy: e0, roundsLeft: 80) == 7)
        #expect(dq.bits(energy: e0, roundsLeft: 100) == 6)
        #expect(dq.bits(energy: e0, roundsLeft: 220) == 6)
        #expect(dq.bits(energy: e0, roundsLeft: 250) == 5)

        // A run of T rounds whose energy decays from E_0 to E_0/100: bits start at the minimum,
        // never exceed the maximum, and end above where they started.
        var run = DynamicQuantization(errorBudget: 1e-4, decay: 0.99, minBits: 2, maxBits: 8)
        let total = 2000
        var widths: [Int] = []
        for t in 0..<total {
            let energy = e0 * (0.01 + 0.99 * exp(-Double(t) / 300))
            widths.append(run.bits(energy: energy, roundsLeft: total - 1 - t))
        }
        #expect(widths.first == 2)
        #expect(widths.last == 4)  // E = 0.01126 E_0: s = 50 * sqrt(0.01126) = 5.3, log2(6.3) -> 3, + sign
        #expect(widths.allSatisfy { (2...8).contains($0) })
        let early = widths[..<(total / 2)].reduce(0, +)
        let late = widths[(total / 2)...].reduce(0, +)
        #expect(early < late)
        // Clamping: a narrow range.
        var narrow = DynamicQuantization(minBits: 3, maxBits: 4)
        #expect(narrow.bits(energy: 1, roundsLeft: 10_000) == 3)
        #expect(narrow.bits(energy: 1, roundsLeft: 0) == 4)
    }
}
