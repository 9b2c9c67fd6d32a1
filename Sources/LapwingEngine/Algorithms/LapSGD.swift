import LapwingCore
import LapwingJob

#if canImport(Glibc)
import Glibc
#endif

/// LAP-SGD ("Local SGD Meets Asynchrony", Bhattacharya et al.; code bapi/LPP-SGD): one replica
/// per NUMA node, Hogwild! workers on their node's replica, and an averager process that
/// averages the replicas in place without ever blocking a worker (design section 5). A round
/// runs whenever every replica has moved H node-level steps since the last one: H = 1 during
/// the averaging warm-up, then `--period`.
struct LapSGD: TrainingAlgorithm {
    static let name = "lap-sgd"
    static let workersCanBeReplaced = true
    static let summary = "a replica per NUMA node, Hogwild! workers on it, non-blocking in-place averaging (Bhattacharya et al.)"
    static let knobs: [Knob] = [
        Knob("period", default: 16, range: 1...1_000_000, integer: true, help: "node-level steps between averaging rounds"),
        Knob("averaging-warmup", default: 0.5, range: 0...1, help: "fraction of training that averages after every step"),
    ]

    static let compressionSite: CompressionSite? = .coordinator

    let requested: Int?
    let period: Int
    let warmup: Double

    init(spec: JobSpec, knobs: Knobs) throws(LapwingError) {
        requested = spec.replicas
        period = knobs.int("period")
        warmup = knobs.double("averaging-warmup")
    }

    func replicaCount(numaNodes: Int) throws(LapwingError) -> Int { requested ?? max(1, numaNodes) }

    func coordinator(_ c: CoordinatorContext) -> (any Coordinator)? {
        c.replicaWorkers.count > 1 ? Averager(c, period: period, warmup: warmup) : nil
    }

    func workerStep(_ c: WorkerContext) -> any WorkerStep { AsynchronousStep(c) }

    /// Across machines (`--mpi`), the machines' models are averaged with the same delta trick
    /// and the same schedule as the node replicas (as bapi/LPP-SGD averages its nodes).
    func machineLevel() -> MachineLevel? { .background(period: period, warmup: warmup) }
}
