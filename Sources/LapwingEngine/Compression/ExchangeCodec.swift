/// One participant's exchange buffer in the arena: a 16-byte header, then the message.
///
/// Header: bytes used (UInt32, header included), the quantizer's width of this message (UInt32;
/// 0 for other codecs), and a tag (UInt64: the sketch's hash seed, checked by the reader). The
/// writer fills it before the round's barrier; readers read it after.
struct ExchangeBuffer {
    let base: UnsafeMutableRawPointer
    let capacity: Int

    static let headerBytes = 16

    init(_ floats: UnsafeMutablePointer<Float>, count: Int) {
        base = UnsafeMutableRawPointer(floats)
        capacity = count * MemoryLayout<Float>.stride
    }

    var used: Int {
        get { Int(base.load(as: UInt32.self)) }
        nonmutating set { base.storeBytes(of: UInt32(newValue), as: UInt32.self) }
    }

    var width: Int {
        get { Int(base.load(fromByteOffset: 4, as: UInt32.self)) }
        nonmutating set { base.storeBytes(of: UInt32(newValue), toByteOffset: 4, as: UInt32.self) }
    }

    var tag: UInt64 {
        get { base.load(fromByteOffset: 8, as: UInt64.self) }
        nonmutating set { base.storeBytes(of: newValue, toByteOffset: 8, as: UInt64.self) }
    }

    /// The message after the header (16-byte aligned, so floats in it are aligned).
    var payload: UnsafeMutableRawPointer { base + Self.headerBytes }
    var payloadCapacity: Int { capacity - Self.headerBytes }
}

/// A compressor's arithmetic over exchange buffers. A round among P participants:
///
///     for each phase k:  prepare(k, all)                  (phase > 0 reads the earlier phases)
///                        write(k, c_p, into: all[p])      every participant, then a barrier
///     reduce(all)
///     addSum(all, scale, into: t)    t += scale * sum_p Q_p   (Q_p: what p's message carries)
///     addOwn(all[p], scale, into: t) t += scale * Q_p
///
/// so a participant can form the mean (1/P) sum Q_p and its own Q_p from the buffers alone: the
/// reduction reads only the compressed form. Every participant that reads the same buffers in
/// the same order computes the same sums, bit for bit.
protocol ExchangeCodec {
    /// Barrier-separated phases of one round.
    var phases: Int { get }
    /// Before participants write phase `phase`: e.g. the sketch's candidates from phase 0.
    mutating func prepare(phase: Int, all: [ExchangeBuffer])
    /// Participant `p` writes its phase-`phase` message from its contribution `c` (d floats) into
    /// `mine`; `progress` (0...1) is how far training is, for schedules.
    mutating func write(phase: Int, contribution c: UnsafePointer<Float>, into mine: ExchangeBuffer, participant p: Int, progress: Double)
    /// After the last phase, before `addSum`/`addOwn`.
    mutating func reduce(all: [ExchangeBuffer])
    /// target += scale * sum over the buffers of what each carries.
    func addSum(_ all: [ExchangeBuffer], scale: Float, into target: UnsafeMutablePointer<Float>)
    /// target += scale * what `mine` carries.
    func addOwn(_ mine: ExchangeBuffer, scale: Float, into target: UnsafeMutablePointer<Float>)

    /// `addSum` over `range` only (target is the whole vector's base), for a participant that
    /// reduces a slice; `range.lowerBound` is a multiple of `rangeAlignment`.
    func addSum(_ all: [ExchangeBuffer], scale: Float, range: Range<Int>, into target: UnsafeMutablePointer<Float>)
    var rangeAlignment: Int { get }
    /// Bytes of `b`'s message that a participant reducing `range` reads (all of it, for codecs
    /// that cannot read less).
    func bytesRead(_ b: ExchangeBuffer, range: Range<Int>) -> Int

    /// True when a round sends only some coordinates, exactly (the sketch's top-k), so the
    /// senders must keep what was not sent; false when every coordinate travels (quantizers).
    var sendsSubset: Bool { get }
    /// The coordinates the last round sent, when `sendsSubset`.
    func forEachSent(_ body: (Int) -> Void)
}

extension ExchangeCodec {
    mutating func prepare(phase: Int, all: [ExchangeBuffer]) {}
    mutating func reduce(all: [ExchangeBuffer]) {}
    var sendsSubset: Bool { false }
    func forEachSent(_ body: (Int) -> Void) {}
}

/// The codec of the quantizers (`qsgd`, `dq`): one phase; a message is the `Quantizer` form of the
/// contribution at a width the compressor chooses per participant and round, written into the
/// header. Stochastic rounding draws from (seed, participant, round), so runs repeat.
struct QuantizedCodec: ExchangeCodec {
    /// Chooses the width of participant p's message for its contribution, given its rounds so far
    /// and the training progress.
    typealias Width = (_ c: UnsafeBufferPointer<Float>, _ participant: Int, _ round: Int, _ progress: Double) -> Int

    let dimension: Int
    let seed: UInt64
    var width: Width
    private var rounds: [Int]
    let phases = 1

    init(dimension: Int, participants: Int, seed: UInt64, width: @escaping Width) {
        self.dimension = dimension
        self.seed = seed
        self.width = width
        rounds = Array(repeating: 0, count: participants)
    }

    /// Bytes a message takes at `bits`, header included.
    static func messageBytes(dimension: Int, bits: Int) -> Int { ExchangeBuffer.headerBytes + Quantizer.compressedBytes(count: dimension, bits: bits) }

    mutating func write(phase: Int, contribution c: UnsafePointer<Float>, into mine: ExchangeBuffer, participant p: Int, progress: Double) {
        let v = UnsafeBufferPointer(start: c, count: dimension)
        let bits = width(v, p, rounds[p], progress)
        let bytes = Quantizer.compressedBytes(count: dimension, bits: bits)
        precondition(bytes <= mine.payloadCapacity, "QuantizedCodec: message larger than its buffer")
        let roundSeed = seed &+ 0x9E37_79B9_7F4A_7C15 &* UInt64(p + 1) &+ 0xD1B5_4A32_D192_ED03 &* UInt64(rounds[p])
        Quantizer.quantize(v, bits: bits, seed: roundSeed, into: UnsafeMutableRawBufferPointer(start: mine.payload, count: bytes))
        mine.width = bits
        mine.tag = 0
        mine.used = ExchangeBuffer.headerBytes + bytes
        rounds[p] += 1
    }

    func addSum(_ all: [ExchangeBuffer], scale: Float, into target: UnsafeMutablePointer<Float>) {
        for b in all { addOwn(b, scale: scale, into: target) }
    }

    func addOwn(_ mine: ExchangeBuffer, scale: Float, into target: UnsafeMutablePointer<Float>) {
        add(mine, scale: scale, range: 0..<dimension, into: target)
    }

    /// Quantizer blocks (512 floats, all but the last full) start at fixed byte offsets, so a
    /// range that starts at a block decodes from its first block's scale on.
    var rangeAlignment: Int { Quantizer.blockSize }

    func addSum(_ all: [ExchangeBuffer], scale: Float, range: Range<Int>, into target: UnsafeMutablePointer<Float>) {
        for b in all { add(b, scale: scale, range: range, into: target) }
    }

    func bytesRead(_ b: ExchangeBuffer, range: Range<Int>) -> Int {
        let (start, end) = byteRange(range, bits: b.width)
        return end - start
    }

    /// The bytes of a message at `bits` that hold `range`'s floats (range starting at a block).
    private func byteRange(_ range: Range<Int>, bits: Int) -> (Int, Int) {
        precondition(
            range.lowerBound % Quantizer.blockSize == 0 && range.upperBound <= dimension,
            "QuantizedCodec: range \(range) does not start at a block")
        return (Quantizer.compressedBytes(count: range.lowerBound, bits: bits), Quantizer.compressedBytes(count: range.upperBound, bits: bits))
    }

    private func add(_ b: ExchangeBuffer, scale: Float, range: Range<Int>, into target: UnsafeMutablePointer<Float>) {
        let bits = b.width
        precondition(Quantizer.bitRange.contains(bits), "QuantizedCodec: a message of width \(bits)")
        guard !range.isEmpty else { return }
        let (start, end) = byteRange(range, bits: bits)
        precondition(ExchangeBuffer.headerBytes + end <= b.used, "QuantizedCodec: message shorter than its range")
        Quantizer.add(
            scaled: scale, from: UnsafeRawBufferPointer(start: b.payload + start, count: end - start), bits: bits,
            into: UnsafeMutableBufferPointer(start: target + range.lowerBound, count: range.count))
    }
}
