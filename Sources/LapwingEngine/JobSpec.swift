import LapwingCore

/// Everything that defines one training job. It travels as JSON from the CLI (or the daemon)
/// to the job host, and is kept with the job's results.
public struct JobSpec: Codable, Sendable, Equatable {
    /// The data: `idx:DIR`, `libsvm:TRAIN[,TEST]`, `csv:TRAIN[,TEST][;label=N][;header]`.
    public var data: String
    /// The model: `softmax`, `mlp:784-256-10`, `logistic`, ...
    public var model: String
    public var algorithm: AlgorithmName
    public var workers: Int
    /// Model replicas; nil: the algorithm's default (one per NUMA node for lap-sgd).
    public var replicas: Int?
    /// Passes over the training set, counting the samples of all workers together.
    public var epochs: Double
    public var batch: Int
    public var schedule: LearningRateSchedule
    public var sgd: SGDRule
    public var averaging: AveragingSchedule
    /// Evaluate the averaged model on the test set every this many epochs (0: only at the end).
    public var evalEvery: Double
    /// Hold out this fraction of the training set as the test set when the data has none.
    public var holdout: Double
    public var seed: UInt64
    /// Job identifier: names the arena (`/lapwing.<id>`) and the job's files.
    public var id: String
    /// Where the host writes model.safetensors, metrics.jsonl and summary.json (nil: nowhere).
    public var outputDir: String?
    /// The data files as open descriptors in the host, by role (set by a launcher that received
    /// them from a client; nil: the host opens the spec's paths itself).
    public var dataDescriptors: [String: Int32]?
    /// The client's paths of those files, by role (for messages).
    public var dataNames: [String: String]?

    public init(
        data: String, model: String, algorithm: AlgorithmName = .lapSGD, workers: Int = 2, replicas: Int? = nil,
        epochs: Double = 5, batch: Int = 16, schedule: LearningRateSchedule = LearningRateSchedule(kind: .cosine, base: 0.02),
        sgd: SGDRule = SGDRule(), averaging: AveragingSchedule = AveragingSchedule(), evalEvery: Double = 1,
        holdout: Double = 0.2, seed: UInt64 = 1, id: String, outputDir: String? = nil
    ) {
        self.outputDir = outputDir
        self.data = data
        self.model = model
        self.algorithm = algorithm
        self.workers = workers
        self.replicas = replicas
        self.epochs = epochs
        self.batch = batch
        self.schedule = schedule
        self.sgd = sgd
        self.averaging = averaging
        self.evalEvery = evalEvery
        self.holdout = holdout
        self.seed = seed
        self.id = id
    }

    /// Checks every field that can be checked without reading the data; errors name the option.
    public func validate() throws(LapwingError) {
        func bad(_ option: String, _ why: String) -> LapwingError {
            LapwingError(.invalidArgument, "\(option): \(why)")
        }
        guard workers >= 1, workers <= 4096 else { throw bad("--workers \(workers)", "must be between 1 and 4096") }
        if let replicas {
            guard replicas >= 1 else { throw bad("--replicas \(replicas)", "must be at least 1") }
            guard replicas <= workers else {
                throw bad("--replicas \(replicas)", "more replicas than workers (\(workers)) leaves a replica nobody trains")
            }
            if algorithm == .hogwild && replicas != 1 {
                throw bad("--replicas \(replicas)", "hogwild trains one shared model; use --algorithm lap-sgd for replicas")
            }
        }
        guard epochs.isFinite, epochs > 0, epochs <= 100_000 else { throw bad("--epochs \(epochs)", "must be positive") }
        guard batch >= 1, batch <= 65536 else { throw bad("--batch \(batch)", "must be between 1 and 65536") }
        try schedule.validate()
        guard sgd.momentum >= 0, sgd.momentum < 1 else { throw bad("--momentum \(sgd.momentum)", "must be in [0, 1)") }
        guard sgd.weightDecay >= 0, sgd.weightDecay.isFinite else {
            throw bad("--weight-decay \(sgd.weightDecay)", "must be a non-negative number")
        }
        try averaging.validate()
        guard evalEvery >= 0, evalEvery.isFinite else { throw bad("--eval-every \(evalEvery)", "must be >= 0") }
        guard holdout >= 0, holdout < 1 else { throw bad("--holdout \(holdout)", "must be a fraction in [0, 1)") }
        guard !id.isEmpty, id.count <= 48, id.utf8.allSatisfy({ $0.isJobIDByte }) else {
            throw bad("job id '\(id)'", "use 1 to 48 characters of A-Z, a-z, 0-9, '-' and '_'")
        }
    }
}

extension UInt8 {
    var isJobIDByte: Bool {
        (self >= 0x30 && self <= 0x39) || (self >= 0x41 && self <= 0x5A) || (self >= 0x61 && self <= 0x7A)
            || self == 0x2D || self == 0x5F
    }
}

/// When the averager of the replica-based algorithms runs: after every `period` node-level
/// steps, but after every step during the first `warmup` of training (LAP-SGD's schedule).
public struct AveragingSchedule: Codable, Sendable, Equatable {
    public var period: Int
    public var warmup: Double

    public init(period: Int = 16, warmup: Double = 0.5) {
        self.period = period
        self.warmup = warmup
    }

    public func validate() throws(LapwingError) {
        guard period >= 1 else { throw LapwingError(.invalidArgument, "--period \(period): must be at least 1") }
        guard warmup >= 0, warmup <= 1 else {
            throw LapwingError(.invalidArgument, "--averaging-warmup \(warmup): must be a fraction in [0, 1]")
        }
    }

    /// Node-level steps between two rounds at training progress `progress`.
    public func interval(at progress: Double) -> Int { progress < warmup ? 1 : period }
}

/// The algorithms of design section 6 that this build runs.
public enum AlgorithmName: String, Codable, Sendable, CaseIterable {
    case hogwild
    case lapSGD = "lap-sgd"
}
