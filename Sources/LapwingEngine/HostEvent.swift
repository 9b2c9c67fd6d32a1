import Foundation
import LapwingCore

/// What a job host reports, one JSON object per line on its stdout (read by `lapwing run` and
/// by the daemon) and, for `progress` and `evaluation`, appended to the job's metrics file.
public struct HostEvent: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case started, progress, evaluation, finished, failed
    }

    public var event: Kind
    public var job: String
    /// Seconds since training started.
    public var elapsed: Double?
    public var samples: Int?
    public var epoch: Double?
    public var epochs: Double?
    public var samplesPerSecond: Double?
    public var trainLoss: Double?
    public var testLoss: Double?
    public var testAccuracy: Double?
    public var learningRate: Double?
    public var averagingRounds: Int?
    public var started: StartedInfo?
    public var summary: JobSummary?
    public var error: String?

    public init(_ event: Kind, job: String) {
        self.event = event
        self.job = job
    }

    public func jsonLine() -> String { Self.jsonString(self) }

    /// Any value as one line of sorted-key JSON.
    public static func jsonString(_ value: some Encodable) -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? enc.encode(value)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    public static func decode(line: some StringProtocol) -> HostEvent? {
        try? JSONDecoder().decode(HostEvent.self, from: Data(line.utf8))
    }
}

/// Where the job's processes are, reported once its children run.
public struct StartedInfo: Codable, Sendable, Equatable {
    public var arena: String
    public var host: Int32
    public var workers: [Int32]
    public var workerCPUs: [Int]
    public var averager: Int32?
    public var replicas: Int
    public var replicaNodes: [Int32]
    public var parameters: Int
    public var trainRows: Int
    public var testRows: Int
    public var blas: String
}

/// The result of a job.
public struct JobSummary: Codable, Sendable, Equatable {
    public var job: String
    /// "completed", "interrupted" (a stop signal), or "failed".
    public var outcome: String
    public var reason: String?
    public var algorithm: String
    public var model: String
    public var data: String
    public var workers: Int
    public var replicas: Int
    public var batch: Int
    public var epochs: Double
    public var samples: Int
    public var trainSeconds: Double
    public var samplesPerSecond: Double
    public var testAccuracy: Double?
    public var testLoss: Double?
    public var trainLoss: Double?
    public var testRows: Int
    public var averagingRounds: Int
    public var averagingBytes: Int
    public var averagingSeconds: Double
    public var blas: String
    public var modelPath: String?
    public var metricsPath: String?
}
