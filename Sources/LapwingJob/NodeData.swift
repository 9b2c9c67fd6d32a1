import LapwingCore

/// Whether each NUMA node gets its own copy of the training set (`--node-data`), bound to that
/// node, for the workers there to read (DimmWitted's per-node data replication, HogWild++'s
/// per-cluster data). `auto`: copies when the job's workers sit on more than one node; `on`:
/// always (one copy on a one-node machine, for testing the path); `off`: every worker reads
/// the one loaded copy. The copies themselves are the engine's (`NodeDataCopies`).
public enum NodeData: String, Sendable, Equatable, CaseIterable {
    case auto, on, off

    /// Parses `auto`, `on` or `off`; errors name the option.
    public static func parse(_ text: String) throws(LapwingError) -> NodeData {
        guard let mode = NodeData(rawValue: text) else {
            throw LapwingError(.invalidArgument, "--node-data \(text.prefix(40)): choose auto, on or off")
        }
        return mode
    }

    /// Whether a job whose workers sit on `nodes` distinct NUMA nodes gets per-node copies.
    public func copies(workerNodes nodes: Int) -> Bool {
        switch self {
        case .auto: nodes > 1
        case .on: true
        case .off: false
        }
    }
}

extension NodeData: Codable {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            self = try NodeData.parse(text)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
}

/// One per-node copy of the training set, as the job host made it (in its `started` event).
public struct DataCopy: Codable, Sendable, Equatable {
    /// The node the copy's pages are bound to (-1: NUMA unavailable, not bound).
    public var node: Int32
    /// The bytes it takes (features, labels, CSR offsets; whole pages).
    public var bytes: Int
    /// The share of sampled pages found on `node` right after the copy was written (move_pages).
    public var pagesOnNode: Double
    /// The workers that read it.
    public var workers: [Int]

    public init(node: Int32, bytes: Int, pagesOnNode: Double, workers: [Int]) {
        self.node = node
        self.bytes = bytes
        self.pagesOnNode = pagesOnNode
        self.workers = workers
    }
}

extension DataCopy {
    /// "training data on node 0 (179.4 MiB, pages 100% there, workers 0,1)", one per copy,
    /// or "one copy of the training data" without copies.
    public static func describe(_ copies: [DataCopy]?) -> String {
        guard let copies, !copies.isEmpty else { return "one copy of the training data" }
        return "training data copied to "
            + copies.map { c in
                "node \(c.node) (\(formatBytes(c.bytes)), \(Int((c.pagesOnNode * 100).rounded()))% of pages there, workers "
                    + "\(c.workers.map(String.init).joined(separator: ",")))"
            }.joined(separator: ", ")
    }
}
