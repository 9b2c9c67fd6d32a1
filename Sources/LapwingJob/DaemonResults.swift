/// Results of the daemon's verbs (protocol v1, docs/protocol.md) that the daemon and the CLI share.

/// `export` and `logs`: the file travels as an attached descriptor; this describes it.
public struct ExportResult: Codable, Sendable, Equatable {
    public var job: String
    public var bytes: Int
    public init(job: String, bytes: Int) {
        self.job = job
        self.bytes = bytes
    }
}

/// `version`.
public struct VersionResult: Codable, Sendable, Equatable {
    public var server: String
    public var protocolVersion: Int
    public var mode: String
    public init(server: String, protocolVersion: Int, mode: String) {
        self.server = server
        self.protocolVersion = protocolVersion
        self.mode = mode
    }
}
