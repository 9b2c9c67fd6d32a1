import ArgumentParser
import LapwingCore
import LapwingEngine

/// The options that define a training job, shared by `run` (and later `submit`).
struct TrainingOptions: ParsableArguments {
    @Option(help: "Training data: idx:DIR, libsvm:TRAIN[,TEST] or csv:TRAIN[,TEST][;label=N][;header].")
    var data: String

    @Option(help: "Model: logistic, svm, leastsquares, softmax, or mlp:IN-HIDDEN...-OUT (e.g. mlp:784-256-10).")
    var model: String

    @Option(
        help: "Algorithm: \(AlgorithmName.allCases.map(\.rawValue).joined(separator: ", ")).",
        completion: .list(AlgorithmName.allCases.map(\.rawValue)))
    var algorithm: String = AlgorithmName.lapSGD.rawValue

    @Option(help: "Worker processes (default: one per core Lapwing may use).")
    var workers: Int?

    @Option(help: "Model replicas (default: one per NUMA node for lap-sgd, 1 for hogwild).")
    var replicas: Int?

    @Option(help: "Passes over the training set, counting all workers' samples together.")
    var epochs: Double = 5

    @Option(help: "Minibatch size of each worker step.")
    var batch: Int = 16

    @Option(help: "Base learning rate.")
    var lr: Float = 0.02

    @Option(
        name: .customLong("lr-schedule"), help: "Learning-rate schedule: constant, step, cosine or linear (to 0).",
        completion: .list(["constant", "step", "cosine", "linear"]))
    var lrSchedule: String = "cosine"

    @Option(help: "Linear learning-rate warm-up, as a fraction of training.")
    var warmup: Double = 0

    @Option(help: "Momentum of each worker's private momentum buffer (0 disables it).")
    var momentum: Float = 0.9

    @Flag(help: "Nesterov momentum instead of heavy ball.")
    var nesterov = false

    @Option(name: .customLong("weight-decay"), help: "L2 weight decay added to the gradient.")
    var weightDecay: Float = 0

    @Option(help: "Averaging period H of lap-sgd, in node-level steps.")
    var period: Int = 16

    @Option(name: .customLong("averaging-warmup"), help: "Fraction of training during which lap-sgd averages after every step.")
    var averagingWarmup: Double = 0.5

    @Option(name: .customLong("eval-every"), help: "Evaluate on the test set every this many epochs (0: only at the end).")
    var evalEvery: Double = 1

    @Option(help: "Fraction of the training set held out as the test set when the data has none.")
    var holdout: Double = 0.2

    @Option(help: "Seed of every random choice (initialisation, sample order).")
    var seed: UInt64 = 1

    @Option(name: .customLong("job-id"), help: "Job identifier (names the arena /dev/shm/lapwing.<id>); default: generated.")
    var jobID: String?

    func spec(defaultWorkers: Int, id: String, outputDir: String?) throws(LapwingError) -> JobSpec {
        guard let algo = AlgorithmName(rawValue: algorithm) else {
            throw LapwingError(
                .invalidArgument, "--algorithm \(algorithm): unknown algorithm",
                detail: "choose one of \(AlgorithmName.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let kind = LearningRateSchedule.Kind(rawValue: lrSchedule) else {
            throw LapwingError(.invalidArgument, "--lr-schedule \(lrSchedule): choose constant, step, cosine or linear")
        }
        let spec = JobSpec(
            data: data, model: model, algorithm: algo, workers: workers ?? defaultWorkers,
            replicas: replicas, epochs: epochs, batch: batch,
            schedule: LearningRateSchedule(kind: kind, base: lr, warmup: warmup),
            sgd: SGDRule(momentum: momentum, nesterov: nesterov, weightDecay: weightDecay),
            averaging: AveragingSchedule(period: period, warmup: averagingWarmup), evalEvery: evalEvery,
            holdout: holdout, seed: seed, id: jobID ?? id, outputDir: outputDir)
        try spec.validate()
        return spec
    }
}
