import LapwingCore

/// `--compress qsgd:BITS`: fixed-width stochastic quantization (Alistarh et al., QSGD, NeurIPS
/// 2017; `Quantizer`): unbiased, a scale per 512 floats, BITS bits per float with the sign.
/// At 4 bits a message is 4 + 256 bytes per 512 floats: 7.9x fewer bytes than Float32.
/// No error feedback, as in the paper: the rounding error is zero-mean noise.
struct QSGDCompressor: Compressor {
    static let name = "qsgd"
    static let summary = "fixed-width unbiased stochastic quantization, a scale per 512 floats (Alistarh et al. 2017)"
    static let knobs: [Knob] = [
        Knob("qsgd-bits", default: 4, range: 2...8, integer: true, help: "bits per float, sign included (qsgd:BITS sets it)")
    ]
    static let argumentKnob: String? = "qsgd-bits"

    let bits: Int

    init(knobs: Knobs) { bits = knobs.int("qsgd-bits") }

    func codec(dimension: Int, participants: Int, seed: UInt64) throws(LapwingError) -> any ExchangeCodec {
        let bits = bits
        return QuantizedCodec(dimension: dimension, participants: participants, seed: seed) { _, _, _, _ in bits }
    }
}
