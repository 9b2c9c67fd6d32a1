/// Fixed-width stochastic quantization, QSGD-style (Alistarh et al., "QSGD: Communication-Efficient
/// SGD via Gradient Quantization and Encoding", NeurIPS 2017), with a per-block scale.
///
/// **Format.** A vector of `count` floats is cut into blocks of `blockSize` (512) floats (the last
/// one may be shorter). Each block is written as its scale (Float32, little-endian, 4 bytes)
/// followed by its codes, `bits` bits per float, packed in groups of 8 floats: a group's 8 codes
/// take exactly `bits` bytes (code i at bit offset i*bits of the group's little-endian word). A
/// short last group is padded with the zero code. Nothing else is written: no header, so the
/// reader must know `count` and `bits` (DQ's bits travel beside the payload, in the slot's
/// metadata). Size: `compressedBytes(count:bits:)` = blocks*4 + ceil(count/8)*bits.
///
/// **Codes.** `bits` (2...8) is the whole width of a code, sign included: a code is a signed level
/// l in -s...s with s = 2^(bits-1) - 1 magnitude levels, stored as l + s. bits = 2 is ternary
/// (-1, 0, +1 times the scale), bits = 8 has s = 127. The dequantized value is l * scale / s.
///
/// **Scale.** The block's max |v| (not its 2-norm, as in QSGD's paper; max scaling is what the
/// bucketed QSGD implementations use): no level is wasted, and the variance is smaller for the
/// same bits. With x = |v| * s / scale, l = floor(x) + 1 with probability frac(x), else floor(x)
/// (with v's sign), so E[l * scale / s] = v: **unbiased**. The variance of one float is
/// (scale/s)^2 p(1-p), p = frac(x), so for a block of n floats with max m
///     E||Q(v) - v||^2 = (m/s)^2 * sum p_i(1-p_i)  <=  n m^2 / (4 s^2)
/// and also <= (m/s) ||v||_1 <= sqrt(n)/s ||v||^2, hence QSGD's bound
/// min(n/s^2, sqrt(n)/s) ||v||^2 holds per block (`varianceBound`, `expectedVariance`).
///
/// **Randomness.** Stochastic rounding draws from eight xorshift32 lanes (one SIMD8<UInt32>),
/// seeded per block from (seed, block index) through SplitMix64, so the result depends only on
/// the seed and the input, not on how the work is split. A block holding a NaN or an infinity
/// gets a non-finite scale and zero codes, so every float of it dequantizes to NaN: propagated,
/// never trapped, and the other blocks are untouched.
///
/// Packing and unpacking run on SIMD8<Float> groups. `add(scaled:...)` is the reduction's hot
/// path: it adds factor * dequantized into a float array without materialising the vector.
public enum Quantizer {
    /// Floats per block (one Float32 scale each).
    public static let blockSize = 512
    /// The widths accepted, sign included.
    public static let bitRange: ClosedRange<Int> = 2...8

    /// Magnitude levels s of a `bits`-wide code: 2^(bits-1) - 1.
    @inline(__always)
    public static func levels(bits: Int) -> Int { (1 << (bits - 1)) - 1 }

    /// Bytes of the compressed form of `count` floats at `bits`.
    public static func compressedBytes(count: Int, bits: Int) -> Int {
        precondition(count >= 0 && bitRange.contains(bits), "Quantizer: bad count or bits")
        let blocks = (count + blockSize - 1) / blockSize
        return blocks * 4 + (count + 7) / 8 * bits
    }

    // MARK: quantize and pack

    /// Quantizes `v` at `bits` with stochastic rounding drawn from `seed` and writes the compressed
    /// form into `out`, which must hold `compressedBytes(count: v.count, bits: bits)` bytes.
    public static func quantize(
        _ v: UnsafeBufferPointer<Float>, bits: Int, seed: UInt64, into out: UnsafeMutableRawBufferPointer
    ) {
        let count = v.count
        let total = compressedBytes(count: count, bits: bits)
        precondition(out.count >= total, "Quantizer.quantize: output buffer too small")
        guard count > 0, let src = v.baseAddress, let dst = out.baseAddress else { return }
        let s = Float(levels(bits: bits))
        let top = SIMD8<Float>(repeating: 2 * s)
        let shifts = SIMD4<UInt32>(0, 1, 2, 3) &* UInt32(bits)
        let highShift = UInt64(4 * bits)
        var offset = 0
        var block = 0
        var start = 0
        while start < count {
            let n = min(blockSize, count - start)
            let p = src + start
            let scale = blockMax(p, n)
            dst.storeBytes(of: scale.bitPattern.littleEndian, toByteOffset: offset, as: UInt32.self)
            offset += 4
            var rng = laneState(seed: seed, block: UInt64(block))
            let finite = scale.isFinite
            let inv = finite && scale > 0 ? s / scale : 0
            let groups = (n + 7) / 8
            for g in 0..<groups {
                let base = g * 8
                let x: SIMD8<Float>
                if !finite {
                    x = SIMD8<Float>(repeating: 0)
                } else if base + 8 <= n {
                    x = UnsafeRawPointer(p + base).loadUnaligned(as: SIMD8<Float>.self)
                } else {
                    var t = SIMD8<Float>(repeating: 0)
                    for i in 0..<(n - base) { t[i] = p[base + i] }
                    x = t
                }
                // code = floor(x * s/scale + s + u), in 0...2s: the level l = code - s rounded
                // stochastically (z >= 0 up to float rounding, so floor never goes below -s).
                let u = nextUniform(&rng)
                let z = x * inv + (u + s)
                let r = (z + magic) - magic  // z rounded to nearest
                var f = r.replacing(with: r - 1, where: r .> z)  // floor(z)
                f = f.replacing(with: top, where: f .> top).replacing(with: 0, where: f .< 0)
                let codes = unsafeBitCast(f + magic, to: SIMD8<UInt32>.self) &- magicBits
                let low = (codes.lowHalf &<< shifts).wrappedSum()
                let high = (codes.highHalf &<< shifts).wrappedSum()
                let word = UInt64(low) | UInt64(high) << highShift
                if offset + 8 <= total {
                    dst.storeBytes(of: word.littleEndian, toByteOffset: offset, as: UInt64.self)
                } else {
                    for i in 0..<bits { dst.storeBytes(of: UInt8(truncatingIfNeeded: word >> (8 * UInt64(i))), toByteOffset: offset + i, as: UInt8.self) }
                }
                offset += bits
            }
            start += n
            block += 1
        }
    }

    // MARK: unpack and accumulate

    /// dst[i] += factor * dequantized[i] for the `dst.count` floats whose compressed form at `bits`
    /// is in `packed`. The reduction's hot path: no temporary vector.
    public static func add(
        scaled factor: Float, from packed: UnsafeRawBufferPointer, bits: Int, into dst: UnsafeMutableBufferPointer<Float>
    ) {
        let count = dst.count
        let total = compressedBytes(count: count, bits: bits)
        precondition(packed.count >= total, "Quantizer.add: packed buffer too small")
        guard count > 0, let src = packed.baseAddress, let out = dst.baseAddress else { return }
        let s = Float(levels(bits: bits))
        let shifts = SIMD4<UInt32>(0, 1, 2, 3) &* UInt32(bits)
        let highShift = UInt64(4 * bits)
        let mask = SIMD8<UInt32>(repeating: (1 << UInt32(bits)) - 1)
        let bias = SIMD8<Float>(repeating: 8_388_608 + s)
        var offset = 0
        var start = 0
        while start < count {
            let n = min(blockSize, count - start)
            let p = out + start
            let scale = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
            offset += 4
            let k = SIMD8<Float>(repeating: factor * scale / s)
            let groups = (n + 7) / 8
            for g in 0..<groups {
                let word: UInt64
                if offset + 8 <= total {
                    word = UInt64(littleEndian: src.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                } else {
                    var w: UInt64 = 0
                    for i in 0..<bits { w |= UInt64(src.load(fromByteOffset: offset + i, as: UInt8.self)) << (8 * UInt64(i)) }
                    word = w
                }
                offset += bits
                let low = SIMD4<UInt32>(repeating: UInt32(truncatingIfNeeded: word)) &>> shifts
                let high = SIMD4<UInt32>(repeating: UInt32(truncatingIfNeeded: word >> highShift)) &>> shifts
                let codes = SIMD8<UInt32>(lowHalf: low, highHalf: high) & mask
                // code as a float: its bits under 2^23's exponent, minus 2^23; l = code - s.
                let l = unsafeBitCast(codes | magicBits, to: SIMD8<Float>.self) - bias
                let base = g * 8
                if base + 8 <= n {
                    let q = UnsafeMutableRawPointer(p + base)
                    q.storeBytes(of: q.loadUnaligned(as: SIMD8<Float>.self) + l * k, as: SIMD8<Float>.self)
                } else {
                    let d = l * k
                    for i in 0..<(n - base) { p[base + i] += d[i] }
                }
            }
            start += n
        }
    }

    /// The dequantized vector into `dst` (zeroed, then `add(scaled: 1, ...)`).
    public static func dequantize(_ packed: UnsafeRawBufferPointer, bits: Int, into dst: UnsafeMutableBufferPointer<Float>) {
        if let b = dst.baseAddress { b.update(repeating: 0, count: dst.count) }
        add(scaled: 1, from: packed, bits: bits, into: dst)
    }

    // MARK: error feedback

    /// Error feedback (the part not sent is carried to the next round): w = v + residual is
    /// quantized into `out`, then residual = w - dequantized(w). `residual` has v's count and
    /// starts at zero for the first round. So sum(sent) = sum(v) - residual after every round.
    ///
    /// Bound: each float's residual is at most its block's step max|w|/s, so with |v| <= V the
    /// residual stays <= V/(s-1) for s >= 2 (bits >= 3). At 2 bits (s = 1, ternary) there is no
    /// such bound: the stochastic ternary quantizer is no contraction, and the residual settles
    /// far above V (about 9 V in QuantizerTests' setting). Use >= 3 bits with error feedback.
    public static func quantizeWithFeedback(
        _ v: UnsafeBufferPointer<Float>, residual: UnsafeMutableBufferPointer<Float>, bits: Int, seed: UInt64,
        into out: UnsafeMutableRawBufferPointer
    ) {
        precondition(v.count == residual.count, "Quantizer.quantizeWithFeedback: residual count differs")
        guard let r = residual.baseAddress, let x = v.baseAddress else { return }
        for i in 0..<v.count { r[i] += x[i] }
        quantize(UnsafeBufferPointer(residual), bits: bits, seed: seed, into: out)
        add(scaled: -1, from: UnsafeRawBufferPointer(out), bits: bits, into: residual)
    }

    // MARK: variance

    /// The quantizer's exact expected squared error E||Q(v) - v||^2 at `bits` (sum over blocks of
    /// (m/s)^2 sum p(1-p)).
    public static func expectedVariance(_ v: UnsafeBufferPointer<Float>, bits: Int) -> Double {
        let s = Double(levels(bits: bits))
        var total = 0.0
        forEachBlock(v) { p, n in
            let m = Double(blockMax(p, n))
            guard m > 0 else { return }
            for i in 0..<n {
                let x = Double(abs(p[i])) * s / m
                let f = x - x.rounded(.down)
                total += (m / s) * (m / s) * f * (1 - f)
            }
        }
        return total
    }

    /// QSGD's bound, per block: sum over blocks of min(n m^2/(4 s^2), min(n/s^2, sqrt(n)/s) ||v_b||^2).
    public static func varianceBound(_ v: UnsafeBufferPointer<Float>, bits: Int) -> Double {
        let s = Double(levels(bits: bits))
        var total = 0.0
        forEachBlock(v) { p, n in
            let m = Double(blockMax(p, n))
            var sq = 0.0
            for i in 0..<n { sq += Double(p[i]) * Double(p[i]) }
            let dn = Double(n)
            total += min(dn * m * m / (4 * s * s), min(dn / (s * s), dn.squareRoot() / s) * sq)
        }
        return total
    }

    /// sum over blocks of n * max|v|^2: the quantity that scales the quantizer's variance bound
    /// (n m^2 / (4 s^2) per block). DQ chooses its bits from it.
    public static func blockEnergy(_ v: UnsafeBufferPointer<Float>) -> Double {
        var total = 0.0
        forEachBlock(v) { p, n in
            let m = Double(blockMax(p, n))
            total += Double(n) * m * m
        }
        return total
    }

    // MARK: internals

    private static func forEachBlock(_ v: UnsafeBufferPointer<Float>, _ body: (UnsafePointer<Float>, Int) -> Void) {
        guard let b = v.baseAddress else { return }
        var start = 0
        while start < v.count {
            let n = min(blockSize, v.count - start)
            body(b + start, n)
            start += n
        }
    }

    /// max |p[i]| over n floats; NaN when any is NaN. On bit patterns: with the sign bit cleared,
    /// a float's pattern as a (non-negative) Int32 orders as its magnitude, and NaNs order above
    /// infinity, so one integer max finds both.
    @inline(__always)
    static func blockMax(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        let magnitude = SIMD8<Int32>(repeating: 0x7FFF_FFFF)
        var acc = SIMD8<Int32>(repeating: 0)
        var i = 0
        while i + 8 <= n {
            let a = UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Int32>.self) & magnitude
            acc = acc.replacing(with: a, where: a .> acc)
            i += 8
        }
        var m = acc.max()
        while i < n {
            m = max(m, Int32(bitPattern: p[i].bitPattern & 0x7FFF_FFFF))
            i += 1
        }
        return m > 0x7F80_0000 ? .nan : Float(bitPattern: UInt32(bitPattern: m))
    }

    /// Eight xorshift32 lanes for one block, seeded from (seed, block) through SplitMix64.
    @inline(__always)
    static func laneState(seed: UInt64, block: UInt64) -> SIMD8<UInt32> {
        var x = seed ^ (block &* 0x9E37_79B9_7F4A_7C15)
        var lanes = SIMD8<UInt32>()
        for i in 0..<4 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            lanes[2 * i] = UInt32(truncatingIfNeeded: z) | 1
            lanes[2 * i + 1] = UInt32(truncatingIfNeeded: z >> 32) | 1
        }
        return lanes
    }

    /// Eight uniforms in [0, 1) (23 bits each) from the lanes, advancing them (xorshift32 13/17/5):
    /// the top 23 bits as the mantissa of a float in [1, 2), minus 1.
    @inline(__always)
    static func nextUniform(_ x: inout SIMD8<UInt32>) -> SIMD8<Float> {
        x ^= x &<< 13
        x ^= x &>> 17
        x ^= x &<< 5
        return unsafeBitCast((x &>> 9) | 0x3F80_0000, to: SIMD8<Float>.self) - 1
    }

    /// 2^23: adding it to a float in [0, 2^23) leaves the nearest integer in the mantissa.
    static let magic = SIMD8<Float>(repeating: 8_388_608)
    static let magicBits = SIMD8<UInt32>(repeating: 0x4B00_0000)
}
