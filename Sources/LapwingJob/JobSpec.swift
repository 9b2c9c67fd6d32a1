import LapwingCore

/// Everything that defines one training job. It travels as JSON from the CLI to the daemon and
/// the job host, and is kept in the job's record.
///
/// Its JSON is versioned (`"version": 2`) and read strictly: an unknown field is refused with
/// its name. Version 1 (no `version` key: the records of Lapwing 0.1, whose `algorithm` is a
/// string beside an `averaging` object) still loads, converted.
public struct JobSpec: Sendable, Equatable {
    /// The version this build writes.
    public static let currentVersion = 2

    /// The data: `idx:DIR`, `libsvm:TRAIN[,TEST]`, `csv:TRAIN[,TEST][;label=N][;header]`.
    public var data: String
    /// The model: `softmax`, `mlp:784-256-10`, `logistic`, ...
    public var model: String
    /// The algorithm and its own knobs (their meaning and defaults are the algorithm's).
    public var algorithm: AlgorithmConfig
    /// How the algorithm's exchange is compressed (`--compress`): a compressor by name with its
    /// knobs, e.g. `{"name":"qsgd","qsgd-bits":4}`; nil: exchanged whole. Checked by the engine's
    /// `Compressors`, like the algorithm's knobs by `Algorithms`.
    public var compression: AlgorithmConfig?
    public var workers: Int
    /// Model replicas; nil: the algorithm's default (e.g. one per NUMA node).
    public var replicas: Int?
    /// Passes over the training set, counting the samples of all workers together.
    public var epochs: Double
    public var batch: Int
    public var schedule: LearningRateSchedule
    public var sgd: SGDRule
    /// Evaluate the averaged model on the test set every this many epochs (0: only at the end).
    public var evalEvery: Double
    /// Hold out this fraction of the training set as the test set when the data has none.
    public var holdout: Double
    public var seed: UInt64
    /// Which training rows each worker samples (`--data-split`; absent in the JSON: iid).
    public var dataSplit: DataSplit = .iid
    /// Per-NUMA-node copies of the training set (`--node-data`; absent in the JSON: auto).
    public var nodeData: NodeData = .auto
    /// A testing knob: one worker's steps are delayed (to compare algorithms under a straggler).
    public var straggler: Straggler?
    /// Seconds between two checkpoints while training (nil: `defaultCheckpointEvery`; 0: only
    /// when the job stops). A checkpoint is also written whenever the job ends.
    public var checkpointEvery: Double?
    /// Times a job that diverges goes on from its last checkpoint with half the learning rate
    /// (`--on-divergence backoff:N`; nil or 0: it fails at once, `--on-divergence fail`).
    public var divergenceBackoffs: Int?
    /// A checkpoint to continue from (set by a launcher: `lapwing run --resume-from`, or the
    /// daemon from the job's own directory; never a client's path).
    public var resumeFrom: String?
    /// A name for people (`--name`): 1 to 64 printable characters, no control characters.
    public var name: String?
    /// Job identifier: names the arena (`/lapwing.<id>`) and the job's files.
    public var id: String
    /// Where the host writes model.safetensors, metrics.jsonl and summary.json (nil: nowhere).
    public var outputDir: String?
    /// The data files as open descriptors in the host, by role (set by a launcher that received
    /// them from a client; nil: the host opens the spec's paths itself).
    public var dataDescriptors: [String: Int32]?
    /// The client's paths of those files, by role (for messages).
    public var dataNames: [String: String]?
    /// This host's rank among the machines of an MPI job (`lapwing run --mpi`, `lapwing submit
    /// --hosts`; nil: one machine).
    public var machine: MachineRank?

    /// The fields of the JSON form, and those only a daemon or launcher sets (a client that
    /// sends one of these is refused).
    public static let fields = [
        "version", "data", "model", "algorithm", "compression", "workers", "replicas", "epochs", "batch", "schedule", "sgd",
        "evalEvery", "holdout", "seed", "dataSplit", "nodeData", "straggler", "checkpointEvery", "divergenceBackoffs", "name", "id", "outputDir",
        "dataDescriptors", "dataNames",
        "resumeFrom", "machine",
    ]
    /// (`machine` is a client's too, for a rank of a job submitted to several daemons: the daemon
    /// then accepts it only as such, `SubmitCheck.machine`.)
    public static let launcherFields = ["id", "outputDir", "dataDescriptors", "dataNames", "resumeFrom"]

    /// Seconds between two checkpoints when the spec does not say.
    public static let defaultCheckpointEvery = 300.0

    public init(
        data: String, model: String, algorithm: AlgorithmConfig, compression: AlgorithmConfig? = nil, workers: Int = 2,
        replicas: Int? = nil, epochs: Double = 5, batch: Int = 16,
        schedule: LearningRateSchedule = LearningRateSchedule(kind: .cosine, base: 0.02), sgd: SGDRule = SGDRule(),
        evalEvery: Double = 1, holdout: Double = 0.2, seed: UInt64 = 1, straggler: Straggler? = nil, id: String,
        outputDir: String? = nil
    ) {
        self.data = data
        self.model = model
        self.algorithm = algorithm
        self.compression = compression
        self.workers = workers
        self.replicas = replicas
        self.epochs = epochs
        self.batch = batch
        self.schedule = schedule
        self.sgd = sgd
        self.evalEvery = evalEvery
        self.holdout = holdout
        self.seed = seed
        self.straggler = straggler
        self.id = id
        self.outputDir = outputDir
    }

    /// Checks every field that can be checked without reading the data or knowing the
    /// algorithm (its knobs are its own to check); errors name the option.
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
        }
        guard epochs.isFinite, epochs > 0, epochs <= 100_000 else { throw bad("--epochs \(epochs)", "must be positive") }
        guard batch >= 1, batch <= 65536 else { throw bad("--batch \(batch)", "must be between 1 and 65536") }
        try schedule.validate()
        guard sgd.momentum >= 0, sgd.momentum < 1 else { throw bad("--momentum \(sgd.momentum)", "must be in [0, 1)") }
        guard sgd.weightDecay >= 0, sgd.weightDecay.isFinite else {
            throw bad("--weight-decay \(sgd.weightDecay)", "must be a non-negative number")
        }
        guard evalEvery >= 0, evalEvery.isFinite else { throw bad("--eval-every \(evalEvery)", "must be >= 0") }
        guard holdout >= 0, holdout < 1 else { throw bad("--holdout \(holdout)", "must be a fraction in [0, 1)") }
        try dataSplit.validate()
        try machine?.validate()
        if let straggler {
            guard straggler.worker >= 0, straggler.worker < workers else {
                throw bad("--straggler \(straggler.worker):\(straggler.milliseconds)", "worker \(straggler.worker) of \(workers) does not exist")
            }
            guard straggler.milliseconds >= 0, straggler.milliseconds <= 60_000 else {
                throw bad("--straggler \(straggler.worker):\(straggler.milliseconds)", "the delay must be 0 to 60000 ms")
            }
        }
        if let every = checkpointEvery {
            guard every.isFinite, every >= 0, every == 0 || every >= 1 else {
                throw bad("--checkpoint-every \(every)", "give seconds, at least 1 (or 0: only when the job stops)")
            }
        }
        if let name {
            let printable = name.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value != 0x7F && !(0x80...0x9F).contains($0.value) }
            guard !name.isEmpty, name.count <= 64, printable, name.first != " ", name.last != " " else { throw bad("--name '\(name.prefix(80))'", "use 1 to 64 printable characters, without leading or trailing spaces") }
        }
        if let n = divergenceBackoffs, !(0...10).contains(n) {
            throw bad("--on-divergence backoff:\(n)", "give 0 to 10 backoffs")
        }
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

/// An algorithm by name with its knobs, as the spec carries it: `{"name":NAME,"period":16}`.
/// The knobs are numbers keyed by their option names (`--period` is `period`); which knobs an
/// algorithm has, their defaults and their ranges are declared by the algorithm itself
/// (LapwingEngine's `Algorithms/`), so a new algorithm changes nothing here.
public struct AlgorithmConfig: Codable, Sendable, Equatable, CustomStringConvertible {
    public var name: String
    /// Knobs given explicitly (the others take the algorithm's defaults).
    public var knobs: [String: Double]

    public init(name: String, knobs: [String: Double] = [:]) {
        self.name = name
        self.knobs = knobs
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        var knobs: [String: Double] = [:]
        var name: String?
        for key in c.allKeys {
            if key.stringValue == "name" {
                name = try c.decode(String.self, forKey: key)
            } else {
                knobs[key.stringValue] = try c.decode(Double.self, forKey: key)
            }
        }
        guard let name else {
            throw DecodingError.keyNotFound(AnyKey("name"), .init(codingPath: c.codingPath, debugDescription: "no name given (\"name\": the algorithm or compressor)"))
        }
        self.init(name: name, knobs: knobs)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: AnyKey.self)
        try c.encode(name, forKey: AnyKey("name"))
        for (k, v) in knobs.sorted(by: { $0.key < $1.key }) { try c.encode(v, forKey: AnyKey(k)) }
    }

    public var description: String {
        ([name] + knobs.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.format($0.value))" }).joined(separator: " ")
    }

    static func format(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v) }
}

/// `--straggler WORKER:MILLISECONDS`: each step of that worker sleeps this long (testing only).
public struct Straggler: Codable, Sendable, Equatable {
    public var worker: Int
    public var milliseconds: Double

    public init(worker: Int, milliseconds: Double) {
        self.worker = worker
        self.milliseconds = milliseconds
    }

    /// Parses `WORKER:MILLISECONDS`.
    public static func parse(_ text: String) throws(LapwingError) -> Straggler {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let w = Int(parts[0]), let ms = Double(parts[1]), ms.isFinite else {
            throw LapwingError(.invalidArgument, "--straggler \(text): expected WORKER:MILLISECONDS, e.g. 1:50")
        }
        return Straggler(worker: w, milliseconds: ms)
    }
}

extension JobSpec: Codable {
    enum Key: String, CodingKey, CaseIterable {
        case version, data, model, algorithm, compression, workers, replicas, epochs, batch, schedule, sgd, evalEvery, holdout, seed
        case dataSplit, nodeData, straggler, checkpointEvery, divergenceBackoffs, name, id, outputDir, dataDescriptors, dataNames, resumeFrom
        case machine
        /// Version 1 only: the averaging period and warm-up.
        case averaging
    }

    public init(from decoder: any Decoder) throws {
        let any = try decoder.container(keyedBy: AnyKey.self)
        let version = try any.decodeIfPresent(Int.self, forKey: AnyKey("version")) ?? 1
        guard version == 1 || version == Self.currentVersion else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: any.codingPath, debugDescription: "job spec version \(version) is not one this build reads (1, 2)"))
        }
        let allowed =
            version == 1
            ? Self.fields.filter {
                !["version", "dataSplit", "nodeData", "straggler", "compression", "checkpointEvery", "divergenceBackoffs", "name", "resumeFrom", "machine"]
                    .contains($0)
            } + ["averaging"]
            : Self.fields
        try any.refuseUnknown(allowed: allowed, in: "the job spec")
        if let inner = try? any.nestedContainer(keyedBy: AnyKey.self, forKey: AnyKey("sgd")) {
            try inner.refuseUnknown(allowed: SGDRule.fields, in: "sgd")
        }
        if let inner = try? any.nestedContainer(keyedBy: AnyKey.self, forKey: AnyKey("schedule")) {
            try inner.refuseUnknown(allowed: LearningRateSchedule.fields, in: "schedule")
        }
        let c = try decoder.container(keyedBy: Key.self)
        data = try c.decode(String.self, forKey: .data)
        model = try c.decode(String.self, forKey: .model)
        if version == 1 {
            // {"algorithm":NAME,"averaging":{"period":16,"warmup":0.5}}: version 1 carried the
            // averaging settings for every algorithm; they become its knobs as they were.
            let name = try c.decode(String.self, forKey: .algorithm)
            var knobs: [String: Double] = [:]
            if let avg = try c.decodeIfPresent(LegacyAveraging.self, forKey: .averaging) {
                knobs = ["period": Double(avg.period), "averaging-warmup": avg.warmup]
            }
            algorithm = AlgorithmConfig(name: name, knobs: knobs)
        } else {
            algorithm = try c.decode(AlgorithmConfig.self, forKey: .algorithm)
        }
        compression = try c.decodeIfPresent(AlgorithmConfig.self, forKey: .compression)
        workers = try c.decode(Int.self, forKey: .workers)
        replicas = try c.decodeIfPresent(Int.self, forKey: .replicas)
        epochs = try c.decode(Double.self, forKey: .epochs)
        batch = try c.decode(Int.self, forKey: .batch)
        schedule = try c.decode(LearningRateSchedule.self, forKey: .schedule)
        sgd = try c.decode(SGDRule.self, forKey: .sgd)
        evalEvery = try c.decode(Double.self, forKey: .evalEvery)
        holdout = try c.decode(Double.self, forKey: .holdout)
        seed = try c.decode(UInt64.self, forKey: .seed)
        dataSplit = try c.decodeIfPresent(DataSplit.self, forKey: .dataSplit) ?? .iid
        nodeData = try c.decodeIfPresent(NodeData.self, forKey: .nodeData) ?? .auto
        straggler = try c.decodeIfPresent(Straggler.self, forKey: .straggler)
        checkpointEvery = try c.decodeIfPresent(Double.self, forKey: .checkpointEvery)
        divergenceBackoffs = try c.decodeIfPresent(Int.self, forKey: .divergenceBackoffs)
        name = try c.decodeIfPresent(String.self, forKey: .name)
        resumeFrom = try c.decodeIfPresent(String.self, forKey: .resumeFrom)
        id = try c.decode(String.self, forKey: .id)
        outputDir = try c.decodeIfPresent(String.self, forKey: .outputDir)
        dataDescriptors = try c.decodeIfPresent([String: Int32].self, forKey: .dataDescriptors)
        dataNames = try c.decodeIfPresent([String: String].self, forKey: .dataNames)
        machine = try c.decodeIfPresent(MachineRank.self, forKey: .machine)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(Self.currentVersion, forKey: .version)
        try c.encode(data, forKey: .data)
        try c.encode(model, forKey: .model)
        try c.encode(algorithm, forKey: .algorithm)
        try c.encodeIfPresent(compression, forKey: .compression)
        try c.encode(workers, forKey: .workers)
        try c.encodeIfPresent(replicas, forKey: .replicas)
        try c.encode(epochs, forKey: .epochs)
        try c.encode(batch, forKey: .batch)
        try c.encode(schedule, forKey: .schedule)
        try c.encode(sgd, forKey: .sgd)
        try c.encode(evalEvery, forKey: .evalEvery)
        try c.encode(holdout, forKey: .holdout)
        try c.encode(seed, forKey: .seed)
        if dataSplit != .iid { try c.encode(dataSplit, forKey: .dataSplit) }
        if nodeData != .auto { try c.encode(nodeData, forKey: .nodeData) }
        try c.encodeIfPresent(straggler, forKey: .straggler)
        try c.encodeIfPresent(checkpointEvery, forKey: .checkpointEvery)
        try c.encodeIfPresent(divergenceBackoffs, forKey: .divergenceBackoffs)
        try c.encodeIfPresent(name, forKey: .name)
        try c.encodeIfPresent(resumeFrom, forKey: .resumeFrom)
        try c.encode(id, forKey: .id)
        try c.encodeIfPresent(outputDir, forKey: .outputDir)
        try c.encodeIfPresent(dataDescriptors, forKey: .dataDescriptors)
        try c.encodeIfPresent(dataNames, forKey: .dataNames)
        try c.encodeIfPresent(machine, forKey: .machine)
    }

    struct LegacyAveraging: Codable {
        var period: Int
        var warmup: Double
    }
}

/// A coding key for any string (strict decoding looks at every key present).
public struct AnyKey: CodingKey, Sendable {
    public var stringValue: String
    public var intValue: Int? { nil }
    public init(_ s: String) { stringValue = s }
    public init?(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) { nil }
}

extension KeyedDecodingContainer where Key == AnyKey {
    /// Throws naming the first key (in sorted order) that is not in `allowed`.
    func refuseUnknown(allowed: [String], in what: String) throws {
        if let unknown = allKeys.map(\.stringValue).sorted().first(where: { !allowed.contains($0) }) {
            throw DecodingError.dataCorrupted(
                .init(
                    codingPath: codingPath + [AnyKey(unknown)],
                    debugDescription: "unknown field \"\(unknown)\" in \(what) (allowed: \(allowed.joined(separator: ", ")))"))
        }
    }
}
