import LapwingCore

/// How the training rows are dealt to the workers (`--data-split`): every worker samples all
/// of them (`iid`), or each worker only its own shard, whose label mix is drawn from a
/// Dirichlet(ALPHA) (`label-skew:ALPHA`; small ALPHA: each class mostly on one worker, large
/// ALPHA: about the same mix everywhere). The shards themselves are the engine's (`DataShards`).
public enum DataSplit: Sendable, Equatable, CustomStringConvertible {
    case iid
    case labelSkew(alpha: Double)

    /// The largest ALPHA taken: beyond it the shards are as good as iid.
    public static let maxAlpha = 1e6

    /// Parses `iid` or `label-skew:ALPHA` (ALPHA > 0, at most `maxAlpha`); errors name the option.
    public static func parse(_ text: String) throws(LapwingError) -> DataSplit {
        if text == "iid" { return .iid }
        let prefix = "label-skew:"
        guard text.hasPrefix(prefix) else {
            throw LapwingError(.invalidArgument, "--data-split \(text): expected iid or label-skew:ALPHA, e.g. label-skew:0.1")
        }
        guard let alpha = Double(text.dropFirst(prefix.count)) else {
            throw LapwingError(.invalidArgument, "--data-split \(text): ALPHA must be a number, e.g. label-skew:0.1")
        }
        let split = DataSplit.labelSkew(alpha: alpha)
        try split.validate()
        return split
    }

    public func validate() throws(LapwingError) {
        guard case .labelSkew(let alpha) = self else { return }
        guard alpha.isFinite, alpha > 0, alpha <= Self.maxAlpha else {
            throw LapwingError(
                .invalidArgument, "--data-split \(description): ALPHA must be above 0 and at most \(Int(Self.maxAlpha))")
        }
    }

    public var description: String {
        switch self {
        case .iid: return "iid"
        case .labelSkew(let alpha): return "label-skew:\(AlgorithmConfig.format(alpha))"
        }
    }
}

extension DataSplit: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            self = try DataSplit.parse(text)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
