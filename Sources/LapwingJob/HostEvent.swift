import Foundation
import LapwingCore

/// What a job host reports, one JSON object per line on its stdout (read by `lapwing run` and
/// by the daemon) and, for `progress` and `evaluation`, appended to the job's metrics file.
public struct HostEvent: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case started, progress, evaluation, finished, failed
        /// Rank 0 of a job submitted to several daemons has started its ompi-server
        /// (`machineMeeting`: its URI and the rendezvous name, for the other ranks).
        case rendezvous
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
    /// Bytes moved between replicas and exchange buffers so far, by every exchange path.
    public var bytesExchanged: Int?
    public var started: StartedInfo?
    public var summary: JobSummary?
    /// What rank 0 of a job across machines publishes for the others (a `rendezvous` event).
    public var machineMeeting: MachineMeeting?
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
    /// The coordinator process (LAP-SGD's averager, ...), if the algorithm has one.
    public var averager: Int32?
    public var replicas: Int
    public var replicaNodes: [Int32]
    public var parameters: Int
    public var trainRows: Int
    public var testRows: Int
    public var blas: String
    /// The per-node copies of the training set (`--node-data`); nil: none, the workers read
    /// the one loaded copy.
    public var dataCopies: [DataCopy]?

    public init(
        arena: String,
        host: Int32,
        workers: [Int32],
        workerCPUs: [Int],
        averager: Int32? = nil,
        replicas: Int,
        replicaNodes: [Int32],
        parameters: Int,
        trainRows: Int,
        testRows: Int,
        blas: String
    ) {
        self.arena = arena
        self.host = host
        self.workers = workers
        self.workerCPUs = workerCPUs
        self.averager = averager
        self.replicas = replicas
        self.replicaNodes = replicaNodes
        self.parameters = parameters
        self.trainRows = trainRows
        self.testRows = testRows
        self.blas = blas
    }
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
    /// Rounds of the coordinator (averaging rounds), the bytes every exchange path moved (the
    /// same as `bytesExchanged`; kept for records of 0.1) and the coordinator's seconds.
    public var averagingRounds: Int
    public var averagingBytes: Int
    public var averagingSeconds: Double
    /// Bytes moved between replicas and exchange buffers, by every exchange path, in all, and
    /// those that crossed a NUMA node (nil in records of Lapwing 0.1).
    public var bytesExchanged: Int?
    public var crossNodeBytes: Int?
    /// The algorithm's knobs with their resolved values (nil in records of Lapwing 0.1).
    public var knobs: [String: Double]?
    /// The compressor of the exchange and its knobs as given (`qsgd qsgd-bits=4`; nil: none).
    public var compression: String?
    /// Processes of the job that died and were replaced (nil in records before 0.3).
    public var restarts: Int?
    /// True when the job failed because its training diverged (NaN, infinity, a loss that
    /// grew a hundredfold): what `--on-divergence backoff` acts on.
    public var diverged: Bool?
    public var blas: String
    public var modelPath: String?
    public var metricsPath: String?
    /// A job across machines (`lapwing run --mpi`; nil otherwise): the machines, this one's
    /// rank, the rounds of its machine level, the bytes this rank put on the wire for them in
    /// all and per round (the model's float32 values; with `--compress`, the mean of its
    /// compressed rounds and its last, exact one), and their seconds.
    public var machines: Int?
    public var machineRank: Int?
    public var machineRounds: Int?
    public var machineBytes: Int?
    public var machineBytesPerRound: Int?
    public var machineSeconds: Double?

    public init(
        job: String,
        outcome: String,
        reason: String? = nil,
        algorithm: String,
        model: String,
        data: String,
        workers: Int,
        replicas: Int,
        batch: Int,
        epochs: Double,
        samples: Int,
        trainSeconds: Double,
        samplesPerSecond: Double,
        testAccuracy: Double? = nil,
        testLoss: Double? = nil,
        trainLoss: Double? = nil,
        testRows: Int,
        averagingRounds: Int,
        averagingBytes: Int,
        averagingSeconds: Double,
        bytesExchanged: Int? = nil,
        crossNodeBytes: Int? = nil,
        knobs: [String: Double]? = nil,
        compression: String? = nil,
        restarts: Int? = nil,
        blas: String,
        modelPath: String? = nil,
        metricsPath: String? = nil
    ) {
        self.job = job
        self.outcome = outcome
        self.reason = reason
        self.algorithm = algorithm
        self.model = model
        self.data = data
        self.workers = workers
        self.replicas = replicas
        self.batch = batch
        self.epochs = epochs
        self.samples = samples
        self.trainSeconds = trainSeconds
        self.samplesPerSecond = samplesPerSecond
        self.testAccuracy = testAccuracy
        self.testLoss = testLoss
        self.trainLoss = trainLoss
        self.testRows = testRows
        self.averagingRounds = averagingRounds
        self.averagingBytes = averagingBytes
        self.averagingSeconds = averagingSeconds
        self.bytesExchanged = bytesExchanged
        self.crossNodeBytes = crossNodeBytes
        self.knobs = knobs
        self.compression = compression
        self.restarts = restarts
        self.blas = blas
        self.modelPath = modelPath
        self.metricsPath = metricsPath
    }
}
