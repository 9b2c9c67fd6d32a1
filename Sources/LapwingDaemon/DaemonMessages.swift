import LapwingData
import LapwingEngine

/// The arguments and results of the daemon's verbs (protocol v1, docs/protocol.md), shared by
/// the daemon and the CLI.
public struct EmptyArgs: Codable, Sendable, Equatable {
    public init() {}
}

/// Names one job (status, watch, pause, resume, cancel, export, logs).
public struct JobRef: Codable, Sendable, Equatable {
    public var job: String
    public init(job: String) { self.job = job }
}

/// `submit`: the job and, in order, the roles of the descriptors attached to the frame.
public struct SubmitRequest: Codable, Sendable, Equatable {
    public var spec: JobSpec
    /// The client left --workers to the daemon: it uses one per core it may use.
    public var defaultWorkers: Bool
    public var files: [DataSpec.InputFile]

    public init(spec: JobSpec, defaultWorkers: Bool, files: [DataSpec.InputFile]) {
        self.spec = spec
        self.defaultWorkers = defaultWorkers
        self.files = files
    }
}

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
