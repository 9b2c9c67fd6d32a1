/// A vector sent one way through compressed messages to readers that each keep a mirror of it:
/// the initial vector plus what every message so far carried. The sender keeps the same mirror
/// and sends the codec's message of (v - mirror), so what a message misses (its quantization
/// error) stays in v - mirror and goes out with a later one: error feedback, as in
/// `CompressedReplicaExchange`. Sender and readers add the same messages with the same code, so
/// their mirrors agree bit for bit.
///
/// One writer per buffer, which runs every phase of the codec alone (no barrier): a reader can
/// add a message with `addOwn`, or several writers' messages with `addSum` when the codec's sum
/// needs no state of a round (the quantizers').
struct CompressedMirror {
    var codec: any ExchangeCodec
    let participant: Int
    /// What the readers know of the vector.
    let mirror: UnsafeMutablePointer<Float>
    private let scratch: UnsafeMutablePointer<Float>
    let count: Int

    /// `initial`: the vector every reader's mirror starts from.
    init(codec: any ExchangeCodec, participant: Int, initial: UnsafePointer<Float>, count: Int) {
        self.codec = codec
        self.participant = participant
        self.count = count
        mirror = .allocate(capacity: count)
        mirror.initialize(from: initial, count: count)
        scratch = .allocate(capacity: count)
    }

    /// Writes the message of v - mirror into `buffer`, adds what it carries to the mirror, and
    /// returns the message's bytes (header included).
    mutating func send(_ v: UnsafePointer<Float>, into buffer: ExchangeBuffer, progress: Double) -> Int {
        Vectors.difference(v, mirror, into: scratch, count: count)
        for phase in 0..<codec.phases {
            codec.prepare(phase: phase, all: [buffer])
            codec.write(phase: phase, contribution: scratch, into: buffer, participant: participant, progress: progress)
        }
        codec.reduce(all: [buffer])
        codec.addOwn(buffer, scale: 1, into: mirror)
        return buffer.used
    }
}
