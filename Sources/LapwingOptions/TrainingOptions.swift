import ArgumentParser
import LapwingCore
import LapwingEngine
import LapwingJob

/// The options that define a training job, shared by `run` and `submit`. The algorithms' own
/// options (`--period 16`, ...) are whatever the chosen algorithm declares (`Algorithms`): they
/// are collected here as the arguments left over and checked against its knobs.
public struct TrainingOptions: ParsableArguments {
    public init() {}

    @Option(help: "Training data: idx:DIR, libsvm:TRAIN[,TEST] or csv:TRAIN[,TEST][;label=N][;header].")
    public var data: String

    @Option(help: "Model: logistic, svm, leastsquares, softmax, or mlp:IN-HIDDEN...-OUT (e.g. mlp:784-256-10).")
    public var model: String

    @Option(
        help: "Algorithm: \(Algorithms.names.joined(separator: ", ")) (their own options are listed below).",
        completion: .list(Algorithms.names))
    public var algorithm: String = Algorithms.defaultName

    @Option(
        help: ArgumentHelp(
            "Compress what the algorithm exchanges: \(Compressors.names.joined(separator: ", ")) (qsgd:BITS; options listed below).",
            valueName: "compressor"),
        completion: .list(Compressors.names))
    public var compress: String?

    @Option(help: "Worker processes (default: one per core Lapwing may use).")
    public var workers: Int?

    @Option(help: "Model replicas (default: the algorithm's, e.g. one per NUMA node or one per worker).")
    public var replicas: Int?

    @Option(help: "Passes over the training set, counting all workers' samples together.")
    public var epochs: Double = 5

    @Option(help: "Minibatch size of each worker step.")
    public var batch: Int = 16

    @Option(help: "Base learning rate.")
    public var lr: Float = 0.02

    @Option(
        name: .customLong("lr-schedule"), help: "Learning-rate schedule: constant, step, cosine or linear (to 0).",
        completion: .list(["constant", "step", "cosine", "linear"]))
    public var lrSchedule: String = "cosine"

    @Option(help: "Linear learning-rate warm-up, as a fraction of training.")
    public var warmup: Double = 0

    @Option(help: "Momentum of each worker's private momentum buffer (0 disables it).")
    public var momentum: Float = 0.9

    @Flag(
        inversion: .prefixedNo,
        help: "Nesterov momentum (the default, as in the LAP-SGD and local-SGD papers' code); --no-nesterov: heavy ball.")
    public var nesterov = true

    @Option(name: .customLong("weight-decay"), help: "L2 weight decay added to the gradient.")
    public var weightDecay: Float = 0

    @Option(name: .customLong("eval-every"), help: "Evaluate on the test set every this many epochs (0: only at the end).")
    public var evalEvery: Double = 1

    @Option(help: "Fraction of the training set held out as the test set when the data has none.")
    public var holdout: Double = 0.2

    @Option(help: "Seed of every random choice (initialisation, sample order).")
    public var seed: UInt64 = 1

    @Option(
        name: .customLong("data-split"),
        help: ArgumentHelp(
            "Which training rows each worker samples: iid (all of them) or label-skew:ALPHA (a shard of its own whose label mix is drawn from a seeded Dirichlet(ALPHA): 0.1 strongly skewed, 100 about iid).",
            valueName: "split"))
    public var dataSplit: String = "iid"

    @Option(
        name: .customLong("node-data"),
        help: ArgumentHelp(
            "A copy of the training set on each NUMA node, bound there, that the node's workers read: auto (when the workers span several nodes), on or off.",
            valueName: "auto|on|off"),
        completion: .list(NodeData.allCases.map(\.rawValue)))
    public var nodeData: String = "auto"

    @Option(
        help: ArgumentHelp(
            "Testing: delay every step of worker W by MS milliseconds (compare algorithms under a straggler).",
            valueName: "W:MS"))
    public var straggler: String?

    @Option(
        name: .customLong("checkpoint-every"),
        help: "Seconds between two checkpoints while training (0: only when the job ends; default 300).")
    public var checkpointEvery: Double?

    @Option(
        name: .customLong("on-divergence"),
        help: ArgumentHelp(
            "When the loss or the parameters turn NaN or infinite (or the loss grows a hundredfold): fail (the default), or backoff[:N]: go on from the last checkpoint with half the learning rate, at most N times (default 3).",
            valueName: "fail|backoff[:N]"))
    public var onDivergence = "fail"

    @Argument(
        parsing: .allUnrecognized,
        help: ArgumentHelp("The algorithm's own options, e.g. --period 16 (listed below with their defaults).", valueName: "algorithm-options"))
    public var algorithmOptions: [String] = []

    @Option(help: "A name for the job, shown by list and status (1 to 64 printable characters).")
    public var name: String?

    @Option(
        help: ArgumentHelp(
            "Read the job's options from FILE: a [Job] section of `option = value` lines, as `lapwing-numa tune --output` writes; options given on the command line win.",
            valueName: "file"))
    public var config: String?

    @Option(name: .customLong("job-id"), help: "Job identifier (names the arena /dev/shm/lapwing.<id>); default: generated.")
    public var jobID: String?

    /// `--on-divergence fail|backoff[:N]` as a count of backoffs (nil: fail).
    public static func backoffs(_ option: String) throws(LapwingError) -> Int? {
        if option == "fail" { return nil }
        if option == "backoff" { return 3 }
        if option.hasPrefix("backoff:"), let n = Int(option.dropFirst("backoff:".count)), (1...10).contains(n) { return n }
        throw LapwingError(.invalidArgument, "--on-divergence \(option): choose fail, backoff, or backoff:N with N from 1 to 10")
    }

    public func spec(defaultWorkers: Int, id: String, outputDir: String?) throws(LapwingError) -> JobSpec {
        let (config, compression) = try Algorithms.parseOptions(algorithmOptions, for: algorithm, compress: compress)
        return try spec(config, compression, defaultWorkers: defaultWorkers, id: id, outputDir: outputDir)
    }

    /// The spec of these options with an algorithm and compressor already parsed (a study's).
    public func spec(_ config: AlgorithmConfig, _ compression: AlgorithmConfig?, defaultWorkers: Int, id: String, outputDir: String?)
        throws(LapwingError) -> JobSpec
    {
        guard let kind = LearningRateSchedule.Kind(rawValue: lrSchedule) else {
            throw LapwingError(.invalidArgument, "--lr-schedule \(lrSchedule): choose constant, step, cosine or linear")
        }
        let spec = JobSpec(
            data: data, model: model, algorithm: config, compression: compression, workers: workers ?? defaultWorkers,
            replicas: replicas, epochs: epochs, batch: batch,
            schedule: LearningRateSchedule(kind: kind, base: lr, warmup: warmup),
            sgd: SGDRule(momentum: momentum, nesterov: nesterov, weightDecay: weightDecay), evalEvery: evalEvery,
            holdout: holdout, seed: seed, straggler: try straggler.map { s throws(LapwingError) in try Straggler.parse(s) },
            id: jobID ?? id, outputDir: outputDir)
        var checked = spec
        checked.checkpointEvery = checkpointEvery
        checked.divergenceBackoffs = try Self.backoffs(onDivergence)
        checked.name = name
        checked.dataSplit = try DataSplit.parse(dataSplit)
        checked.nodeData = try NodeData.parse(nodeData)
        try checked.validate()
        try Algorithms.check(checked)
        return checked
    }
}

extension TrainingOptions {
    /// Sets the option `--NAME` of these (a study's `--sweep NAME=VALUE`); false when NAME is not
    /// one a study sweeps (the algorithms' and compressors' options are theirs). The value is
    /// checked with the rest of the spec, as if given on the command line.
    public mutating func set(_ name: String, to value: String) throws(LapwingError) -> Bool {
        func number<T: LosslessStringConvertible>(_ v: String) throws(LapwingError) -> T {
            guard let n = T(v) else { throw LapwingError(.invalidArgument, "--sweep \(name)=\(v): '\(v)' is not a number") }
            return n
        }
        switch name {
        case "batch": batch = try number(value)
        case "workers": workers = try number(value) as Int
        case "replicas": replicas = try number(value) as Int
        case "epochs": epochs = try number(value)
        case "lr": lr = try number(value)
        case "lr-schedule": lrSchedule = value
        case "warmup": warmup = try number(value)
        case "momentum": momentum = try number(value)
        case "weight-decay": weightDecay = try number(value)
        case "holdout": holdout = try number(value)
        case "seed": seed = try number(value)
        case "data-split": dataSplit = value
        case "node-data": nodeData = value
        case "compress": compress = value == "none" ? nil : value
        case "straggler": straggler = value == "none" ? nil : value
        case "eval-every": evalEvery = try number(value)
        default: return false
        }
        return true
    }

    /// Every option of the job as a job file's `key = value` entries (`JobConfigFile`), defaults
    /// included; the algorithm's and compressor's options by name. Not the job's id or `--config`.
    public func fileEntries() throws(LapwingError) -> [(String, String)] {
        _ = try Algorithms.parseOptions(algorithmOptions, for: algorithm, compress: compress)
        func number(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v) }
        var e: [(String, String)] = [("data", data), ("model", model), ("algorithm", algorithm)]
        if let compress { e.append(("compress", compress)) }
        if let workers { e.append(("workers", String(workers))) }
        if let replicas { e.append(("replicas", String(replicas))) }
        e += [
            ("epochs", number(epochs)), ("batch", String(batch)), ("lr", String(lr)), ("lr-schedule", lrSchedule),
            ("warmup", number(warmup)), ("momentum", String(momentum)), ("nesterov", nesterov ? "yes" : "no"),
            ("weight-decay", String(weightDecay)), ("eval-every", number(evalEvery)), ("holdout", number(holdout)),
            ("seed", String(seed)), ("data-split", dataSplit), ("node-data", nodeData), ("on-divergence", onDivergence),
        ]
        if let straggler { e.append(("straggler", straggler)) }
        if let checkpointEvery { e.append(("checkpoint-every", number(checkpointEvery))) }
        if let name { e.append(("name", name)) }
        // The algorithm's and compressor's options as given (checked above).
        return e + Self.optionPairs(algorithmOptions)
    }

    /// `--NAME VALUE` and `--NAME=VALUE` arguments (the algorithm's options) as (NAME, VALUE).
    public static func optionPairs(_ options: [String]) -> [(String, String)] {
        var result: [(String, String)] = []
        var i = 0
        while i < options.count {
            let option = options[i].drop { $0 == "-" }
            if let eq = option.firstIndex(of: "=") {
                result.append((String(option[..<eq]), String(option[option.index(after: eq)...])))
                i += 1
            } else {
                result.append((String(option), i + 1 < options.count ? options[i + 1] : ""))
                i += 2
            }
        }
        return result
    }

    /// The options `set(_:to:)` knows, for messages.
    public static let sweepable = [
        "batch", "workers", "replicas", "epochs", "lr", "lr-schedule", "warmup", "momentum", "weight-decay", "holdout", "seed",
        "data-split", "node-data", "compress", "straggler", "eval-every",
    ]
}
