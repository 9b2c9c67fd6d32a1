import LapwingCore
import LapwingJob

/// One way of compressing what an algorithm exchanges (`--compress NAME`): its knobs, and the
/// codec that writes a participant's contribution into its exchange buffer and reads the
/// buffers back. Each compressor is one file in `Compression/`, listed in `Compressors.all`.
protocol Compressor: Sendable {
    /// The `--compress` name.
    static var name: String { get }
    /// One line for `--help`, naming the paper.
    static var summary: String { get }
    /// Its options (`--NAME VALUE`), each name prefixed with the compressor's (`--dq-decay`).
    static var knobs: [Knob] { get }
    /// The knob that `--compress NAME:VALUE` sets (`qsgd:4` sets `qsgd-bits`), if any.
    static var argumentKnob: String? { get }
    /// Barrier-separated phases of its codecs' rounds (`ExchangeCodec.phases`): more than one
    /// needs every participant's message of one phase before anyone writes the next.
    static var phases: Int { get }

    init(knobs: Knobs)

    /// The codec for a model of `dimension` parameters exchanged among `participants`; errors
    /// when its messages would not fit in an exchange buffer (d floats) or save nothing.
    func codec(dimension: Int, participants: Int, seed: UInt64) throws(LapwingError) -> any ExchangeCodec
}

extension Compressor {
    static var argumentKnob: String? { nil }
    static var phases: Int { 1 }
}

/// Where an algorithm's exchange runs, which decides the buffers compression needs.
public enum CompressionSite: Sendable {
    /// One process (LAP-SGD's averager) compresses every replica's contribution in turn and
    /// reduces them: one buffer per replica, on the replica's node.
    case coordinator
    /// Each worker compresses its own contribution, and every worker reads all of them (an
    /// all-gather): two buffers per worker on its replica's node, used in alternate rounds so a
    /// fast worker's next message never overwrites one that a slow worker still reads.
    case workers
}

/// A spec's compressor, resolved: what the algorithms' exchange paths use.
struct Compression: Sendable {
    let compressor: any Compressor
    let config: AlgorithmConfig
    let seed: UInt64

    /// Its codecs' phases per round (`Compressor.phases`).
    var phases: Int { type(of: compressor).phases }

    /// The codec for `participants` contributions of `dimension` floats.
    func codec(dimension: Int, participants: Int) -> any ExchangeCodec {
        // The job host checked the fit (`Compressors.checkFits`) before it forked.
        do throws(LapwingError) {
            return try compressor.codec(dimension: dimension, participants: participants, seed: seed)
        } catch {
            preconditionFailure("compression was checked before the fork: \(error.message)")
        }
    }

    /// What the arena holds for it at `site`, besides the algorithm's own needs.
    static func needs(_ site: CompressionSite) -> ArenaNeeds {
        switch site {
        case .coordinator: ArenaNeeds(vectorsPerReplica: 2)  // the replica and one buffer
        case .workers: ArenaNeeds(exchangeVectorsPerWorker: 2)
        }
    }
}

/// The compressors this build has, by `--compress` name.
public enum Compressors {
    static let all: [any Compressor.Type] = [QSGDCompressor.self, DQCompressor.self, SketchCompressor.self]

    /// `none` and every compressor's name.
    public static var names: [String] { ["none"] + all.map { $0.name } }

    /// The spec's compressor with its knobs checked; nil when it has none (or `none`).
    static func resolve(_ spec: JobSpec) throws(LapwingError) -> Compression? {
        guard let config = spec.compression, config.name != "none" else {
            if let config = spec.compression, let k = config.knobs.keys.sorted().first {
                throw LapwingError(.invalidArgument, "--\(k): not an option of --compress none (it has none)")
            }
            return nil
        }
        guard let type = all.first(where: { $0.name == config.name }) else {
            throw LapwingError(
                .invalidArgument, "--compress \(config.name): unknown compressor",
                detail: "choose one of \(names.joined(separator: ", "))")
        }
        return Compression(compressor: type.init(knobs: try Knobs(config, declared: type.knobs)), config: config, seed: spec.seed)
    }

    /// Checks that the spec's compressor fits a model of `dimension` parameters with this many
    /// participants (the job host calls it once the model's size is known).
    static func checkFits(_ compression: Compression?, dimension: Int, participants: Int) throws(LapwingError) {
        guard let compression else { return }
        _ = try compression.compressor.codec(dimension: dimension, participants: max(1, participants), seed: compression.seed)
    }

    /// Parses `--compress NAME` or `NAME:VALUE` (nil for none).
    public static func parse(_ text: String) throws(LapwingError) -> AlgorithmConfig? {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let name = parts[0]
        if name == "none" {
            guard parts.count == 1 else { throw LapwingError(.invalidArgument, "--compress \(text): none takes no value") }
            return nil
        }
        guard let type = all.first(where: { $0.name == name }) else {
            throw LapwingError(
                .invalidArgument, "--compress \(text): unknown compressor", detail: "choose one of \(names.joined(separator: ", "))")
        }
        var knobs: [String: Double] = [:]
        if parts.count == 2 {
            guard let knob = type.argumentKnob else {
                throw LapwingError(.invalidArgument, "--compress \(text): \(name) takes no value after ':' (its options: \(type.knobs.map { "--\($0.name)" }.joined(separator: ", ")))")
            }
            guard let v = Double(parts[1]), v.isFinite else {
                throw LapwingError(.invalidArgument, "--compress \(text): '\(parts[1])' is not a number")
            }
            knobs[knob] = v
        }
        let config = AlgorithmConfig(name: name, knobs: knobs)
        _ = try Knobs(config, declared: type.knobs)
        return config
    }

    /// The knob names of every compressor (to route a command line's options).
    public static var knobNames: Set<String> { Set(all.flatMap { $0.knobs.map(\.name) }) }

    /// Moves the options of `compression`'s knobs from `options` into it (checked); an option of
    /// another compressor is refused, naming the one that has it.
    public static func take(_ options: inout [String: Double], into compression: AlgorithmConfig?) throws(LapwingError) -> AlgorithmConfig? {
        let own = compression.flatMap { c in all.first { $0.name == c.name } }
        var config = compression
        for key in options.keys.sorted() where knobNames.contains(key) {
            guard let type = own, type.knobs.contains(where: { $0.name == key }), var c = config else {
                let owner = all.first { $0.knobs.contains { $0.name == key } }!
                throw LapwingError(
                    .invalidArgument, "--\(key): an option of --compress \(owner.name)",
                    detail: compression == nil ? "add --compress \(owner.name)" : "it does not apply to --compress \(compression!.name)")
            }
            if c.knobs[key] != nil { throw LapwingError(.invalidArgument, "--\(key): given twice") }
            c.knobs[key] = options.removeValue(forKey: key)
            config = c
        }
        if let config, let type = own { _ = try Knobs(config, declared: type.knobs) }
        return config
    }

    /// Every compressor and its options, for `--help`.
    public static var help: String {
        var lines = ["Compression of the exchange (--compress NAME), with its options and defaults:", "  none: exchange whole (the default)"]
        for c in all {
            lines.append("  \(c.name)\(c.argumentKnob == nil ? "" : ":VALUE"): \(c.summary)")
            for k in c.knobs { lines.append("      \(k.usage)  \(k.help)") }
        }
        return lines.joined(separator: "\n")
    }
}
