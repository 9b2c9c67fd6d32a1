import LapwingCore

/// `--compress dq`: DQ-SGD's dynamic quantization (Yan et al. 2021; `DynamicQuantization` states
/// the rule as implemented): the `Quantizer`'s width is chosen for every message from the energy
/// of what is sent and the rounds left, fewer bits early and more late. Each participant keeps
/// its own schedule (its first message's energy is its yardstick); the width travels in the
/// message's header. Rounds left are estimated from the participant's rounds so far and the
/// training's progress: R = rounds * (1 - progress) / progress.
///
/// The width never goes below 3 bits by default (`--dq-min-bits`): what a message leaves out is
/// carried to the next round (the exchange's error feedback), and only from 3 bits on does the
/// quantizer shrink what it carries (`Quantizer.quantizeWithFeedback`); at 2 bits (ternary) the
/// carried error settles at several times a round's contribution, so replicas drift apart.
struct DQCompressor: Compressor {
    static let name = "dq"
    static let summary = "DQ-SGD: the quantizer's width per round from the norm sent and the rounds left (Yan et al. 2021)"
    static let knobs: [Knob] = [
        Knob(
            "dq-budget", default: DynamicQuantization.defaultErrorBudget, range: 1e-9...1,
            help: "quantization variance allowed in the last round, relative to the first round's energy"),
        Knob("dq-decay", default: DynamicQuantization.defaultDecay, range: 0.5...1, help: "alpha: the per-round discount of earlier rounds' error"),
        Knob("dq-min-bits", default: 3, range: 2...8, integer: true, help: "fewest bits per float (3: error feedback contracts)"),
        Knob("dq-max-bits", default: 8, range: 2...8, integer: true, help: "most bits per float"),
    ]

    let rule: DynamicQuantization?
    let bounds: (Int, Int)

    init(knobs: Knobs) {
        bounds = (knobs.int("dq-min-bits"), knobs.int("dq-max-bits"))
        rule =
            bounds.0 <= bounds.1
            ? DynamicQuantization(
                errorBudget: knobs.double("dq-budget"), decay: knobs.double("dq-decay"), minBits: bounds.0, maxBits: bounds.1)
            : nil
    }

    func codec(dimension: Int, participants: Int, seed: UInt64) throws(LapwingError) -> any ExchangeCodec {
        guard let rule else {
            throw LapwingError(.invalidArgument, "--dq-min-bits \(bounds.0): more than --dq-max-bits \(bounds.1)")
        }
        let schedules = SchedulePerParticipant(Array(repeating: rule, count: participants))
        return QuantizedCodec(dimension: dimension, participants: participants, seed: seed) { c, p, round, progress in
            schedules.bits(participant: p, c, roundsLeft: DQCompressor.roundsLeft(after: round + 1, progress: progress))
        }
    }

    /// Rounds after this one, from the rounds so far (this one included) and the progress.
    static func roundsLeft(after rounds: Int, progress: Double) -> Int {
        guard progress > 0 else { return 1_000_000 }
        guard progress < 1 else { return 0 }
        return Int(min(1e6, (Double(rounds) * (1 - progress) / progress).rounded()))
    }
}

/// Each participant's DQ state (its yardstick energy), kept by the codec's width closure.
final class SchedulePerParticipant {
    private var rules: [DynamicQuantization]
    init(_ rules: [DynamicQuantization]) { self.rules = rules }
    func bits(participant p: Int, _ c: UnsafeBufferPointer<Float>, roundsLeft: Int) -> Int {
        rules[p].bits(for: c, roundsLeft: roundsLeft)
    }
}
