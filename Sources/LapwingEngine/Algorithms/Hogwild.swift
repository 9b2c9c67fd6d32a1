import LapwingCore
import LapwingJob

/// Hogwild! (Niu, Recht, Ré, Wright, NeurIPS 2011): one model for the machine, every worker
/// writing its steps into it without locks. No knobs beyond the batch.
struct Hogwild: TrainingAlgorithm {
    static let name = "hogwild"
    static let summary = "one shared model; every worker writes its steps into it without locks (Niu et al. 2011)"
    static let knobs: [Knob] = []

    init(spec: JobSpec, knobs: Knobs) throws(LapwingError) {
        if let r = spec.replicas, r != 1 {
            throw LapwingError(
                .invalidArgument, "--replicas \(r): hogwild trains one shared model",
                detail: "use --algorithm lap-sgd (or another replica-based algorithm) for replicas")
        }
    }

    func replicaCount(numaNodes: Int) throws(LapwingError) -> Int { 1 }

    func workerStep(_ c: WorkerContext) -> any WorkerStep { AsynchronousStep(c) }
}

/// The asynchronous step of Hogwild! and LAP-SGD: claim this step's samples from the job's
/// budget, compute the gradient at the worker's replica as it is (no lock), and write the step
/// into it in place. It never waits on another process; it looks at the job's state word and
/// the replica's node-level step count (the learning rate's clock) every 8 steps.
struct AsynchronousStep: WorkerStep {
    let x: UnsafeMutablePointer<Float>
    let shared: SharedState
    /// The workers of this replica: their steps together are the node-level count.
    let replicaWorkers: [Int]
    let totalSamples: Int
    let schedule: LearningRateSchedule
    /// Node-level steps planned for this replica: its share of all steps.
    let plannedNodeSteps: Double
    var nodeSteps = 0

    init(_ c: WorkerContext) {
        x = c.shared.replica(c.replica)
        shared = c.shared
        replicaWorkers = c.replicaWorkers[c.replica]
        totalSamples = c.totalSamples
        schedule = c.spec.schedule
        let b = Double(max(1, c.spec.batch))
        plannedNodeSteps = max(1, Double(c.totalSamples) / b * Double(replicaWorkers.count) / Double(c.spec.workers))
    }

    @inline(__always)
    mutating func step(_ t: inout Trainer) -> Bool {
        let phase = t.steps & 7
        if phase == 0 {
            guard shared.waitWhilePaused() else { return false }
            nodeSteps = shared.steps(of: replicaWorkers)
        }
        let n = shared.claimSamples(t.batch, total: totalSamples)
        if n == 0 { return false }
        t.draw(n)
        let loss = t.gradient(at: x)
        guard loss.isFinite else {
            t.finish(samples: n, loss: loss)
            return false
        }
        t.apply(rate: schedule.rate(at: Double(nodeSteps + phase) / plannedNodeSteps), to: x)
        t.finish(samples: n, loss: loss)
        return true
    }
}
