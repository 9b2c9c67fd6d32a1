import LapwingCore
import LapwingData
import LapwingJob
import LapwingModels

/// A worker's part of an algorithm: one step after another until it returns false. A step
/// draws its minibatch, computes a gradient and writes an update through the `Trainer`, and
/// waits on others only if the algorithm is synchronous.
protocol WorkerStep {
    /// One step; false when the worker is done (its share of the budget, or the job stopping).
    mutating func step(_ t: inout Trainer) -> Bool
}

/// A coordinator process's loop (LAP-SGD's averager, a reducer...): runs until the job ends.
protocol Coordinator {
    /// Its role, which names the process (`lw-<role>` in ps: at most 12 bytes).
    var role: String { get }
    /// Whether a fresh process may take over from one that died (it keeps no state of its own
    /// that the arena does not hold).
    var canBeReplaced: Bool { get }
    mutating func run()
}

extension Coordinator {
    var canBeReplaced: Bool { false }
}

/// What a worker's step may use: the arena and where this worker sits in it.
struct WorkerContext {
    let index: Int
    let replica: Int
    let spec: JobSpec
    let shared: SharedState
    /// Workers per replica (`replicaWorkers[r]` trains replica r).
    let replicaWorkers: [[Int]]
    /// The NUMA node of each replica (-1: unknown); a worker's own replica is on its node.
    let replicaNodes: [Int32]
    /// Samples of all workers together at which training ends.
    let totalSamples: Int
    let parameterCount: Int
    /// The NUMA node of each worker (empty when unknown: node 0 for all).
    var workerNodes: [Int32] = []
    /// The spec's compressor (`--compress`), if any.
    var compression: Compression? = nil
    /// 0 for the first process of this worker; n for its n-th replacement (a fresh sample order).
    var incarnation = 0
    /// The barrier of lockstep rounds across machines (`MachineRoundPoint`); nil when the job
    /// runs on one machine or its algorithm's machine level is not lockstep.
    var machineBarrier: Int? = nil

    /// The NUMA node worker `w` runs on.
    func node(ofWorker w: Int) -> Int32 { w < workerNodes.count ? workerNodes[w] : 0 }

    /// The NUMA node of worker `w`'s exchange vectors (its replica's).
    func exchangeNode(ofWorker w: Int) -> Int32 {
        let r = replicaWorkers.firstIndex { $0.contains(w) } ?? 0
        return r < replicaNodes.count ? replicaNodes[r] : 0
    }
}

/// What a coordinator may use.
struct CoordinatorContext {
    let spec: JobSpec
    let shared: SharedState
    let replicaWorkers: [[Int]]
    let replicaNodes: [Int32]
    /// The coordinator's own slot in the arena and its NUMA node.
    let slot: Int
    let node: Int32
    let totalSamples: Int
    let parameterCount: Int
    /// The spec's compressor (`--compress`), if any.
    var compression: Compression? = nil
}

/// Drives a worker's step until it is done (the step's type is opened once, so the loop
/// calls it directly).
func runSteps<S: WorkerStep>(_ step: inout S, _ trainer: inout Trainer) {
    while step.step(&trainer) {}
}
