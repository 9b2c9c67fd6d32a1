import LapwingCore
import LapwingJob

/// What one algorithm of the family decides (design section 6), so that nothing else in Lapwing
/// tests an algorithm's name: its options, the replicas and arena it needs, the processes it
/// runs (workers, and a coordinator such as LAP-SGD's averager), a worker's step and the
/// coordinator's loop. Each algorithm is one file in `Algorithms/`, listed in `Algorithms.all`.
///
/// The value is made in the job host (and by the daemon and the CLI, to check a spec) from the
/// spec and the resolved knobs; the job host forks after making it, so the workers and the
/// coordinator get their steps from the same value.
protocol TrainingAlgorithm: Sendable {
    /// The `--algorithm` name.
    static var name: String { get }
    /// One line for `lapwing run --help`, naming the paper where there is one.
    static var summary: String { get }
    /// Its options (`--NAME VALUE` on the command line), with their defaults.
    static var knobs: [Knob] { get }
    /// Whether a worker that dies can be replaced mid-job by a fresh one on the same CPU and
    /// replica (with a fresh sample order): true where workers never wait for each other, so a
    /// newcomer just goes on claiming samples. Synchronous workers hold their place in a barrier
    /// round and a step count that a newcomer cannot know.
    static var workersCanBeReplaced: Bool { get }
    /// Where its exchange runs, if it has one that `--compress` can compress (nil: it refuses
    /// `--compress`). Its exchange paths then take `compression` from their context.
    static var compressionSite: CompressionSite? { get }

    /// Checks the spec's fields that concern this algorithm (errors name the option).
    init(spec: JobSpec, knobs: Knobs) throws(LapwingError)

    /// Model replicas for a job whose placement spans `numaNodes` nodes.
    func replicaCount(numaNodes: Int) throws(LapwingError) -> Int

    /// What the arena holds besides the replicas and the process slots.
    func arenaNeeds(replicas: Int) -> ArenaNeeds

    /// The coordinator process's loop, if the algorithm has one with these replicas.
    func coordinator(_ context: CoordinatorContext) -> (any Coordinator)?

    /// The step of one worker (made in the worker process, after the fork).
    func workerStep(_ context: WorkerContext) -> any WorkerStep

    /// How a worker's `Trainer` draws its rows (default: its own order, one batch per step).
    func trainerShape(_ context: WorkerContext) -> TrainerShape

    /// Shapes the arena's barriers (participants, quorum) in the job host before it forks, when
    /// nobody can be waiting on them: e.g. one barrier per group of workers. Default: as created
    /// (every worker takes part in every barrier).
    func configureBarriers(_ shared: SharedState, replicaWorkers: [[Int]], replicaNodes: [Int32])

    /// What it averages across machines in a job that spans several (`lapwing run --mpi`), or
    /// nil when it has no machine level (default).
    func machineLevel() -> MachineLevel?
}

extension TrainingAlgorithm {
    static var compressionSite: CompressionSite? { nil }
    static var workersCanBeReplaced: Bool { false }
    func trainerShape(_ context: WorkerContext) -> TrainerShape { TrainerShape() }
    func arenaNeeds(replicas: Int) -> ArenaNeeds { ArenaNeeds() }
    func coordinator(_ context: CoordinatorContext) -> (any Coordinator)? { nil }
    func configureBarriers(_ shared: SharedState, replicaWorkers: [[Int]], replicaNodes: [Int32]) {}
    func machineLevel() -> MachineLevel? { nil }
}

/// What the arena holds for an algorithm besides the replicas (design section 3).
public struct ArenaNeeds: Sendable, Equatable {
    /// Vectors per replica, the replica itself included (snapshot, anchor, slow momentum...).
    public var vectorsPerReplica = 1
    /// Vectors of d floats per worker (gradient exchange buffers), on its replica's node.
    public var exchangeVectorsPerWorker = 0
    /// Cross-process barriers (futex words, one cache line each).
    public var barriers = 0

    public init(vectorsPerReplica: Int = 1, exchangeVectorsPerWorker: Int = 0, barriers: Int = 0) {
        self.vectorsPerReplica = vectorsPerReplica
        self.exchangeVectorsPerWorker = exchangeVectorsPerWorker
        self.barriers = barriers
    }

    /// These needs with `extra`'s added after them (`extra`'s replica vectors beside the replica
    /// itself, which both count).
    func adding(_ extra: ArenaNeeds) -> ArenaNeeds {
        ArenaNeeds(
            vectorsPerReplica: vectorsPerReplica + extra.vectorsPerReplica - 1,
            exchangeVectorsPerWorker: exchangeVectorsPerWorker + extra.exchangeVectorsPerWorker, barriers: barriers + extra.barriers)
    }
}

/// One option of an algorithm: `--name VALUE`, a number, with its default and range.
public struct Knob: Sendable {
    public let name: String
    public let defaultValue: Double
    public let range: ClosedRange<Double>
    public let integer: Bool
    public let help: String

    public init(_ name: String, default value: Double, range: ClosedRange<Double>, integer: Bool = false, help: String) {
        self.name = name
        defaultValue = value
        self.range = range
        self.integer = integer
        self.help = help
    }

    /// `--period 16`: the option as help shows it, with its default.
    public var usage: String { "--\(name) \(Knob.format(defaultValue))" }

    static func format(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v) }
}

/// An algorithm's knobs with every value resolved: the spec's, else the default.
public struct Knobs: Sendable, Equatable {
    public let values: [String: Double]

    /// Resolves `config` against `declared`: an unknown knob, a value out of range or a fraction
    /// where a count belongs is refused, naming the option and the algorithm.
    public init(_ config: AlgorithmConfig, declared: [Knob]) throws(LapwingError) {
        var values: [String: Double] = [:]
        for k in declared { values[k.name] = k.defaultValue }
        for (name, v) in config.knobs.sorted(by: { $0.key < $1.key }) {
            guard let k = declared.first(where: { $0.name == name }) else {
                let own = declared.isEmpty ? "it has none" : "its options: " + declared.map { "--\($0.name)" }.joined(separator: ", ")
                throw LapwingError(.invalidArgument, "--\(name): not an option of \(config.name) (\(own))")
            }
            guard v.isFinite, k.range.contains(v), !k.integer || v == v.rounded() else {
                let what = k.integer ? "a whole number" : "a number"
                throw LapwingError(
                    .invalidArgument,
                    "--\(name) \(Knob.format(v)): \(config.name) needs \(what) from \(Knob.format(k.range.lowerBound)) to \(Knob.format(k.range.upperBound))")
            }
            values[name] = v
        }
        self.values = values
    }

    public func double(_ name: String) -> Double {
        guard let v = values[name] else { preconditionFailure("knob \(name) is not declared") }
        return v
    }

    public func int(_ name: String) -> Int { Int(double(name)) }
}
