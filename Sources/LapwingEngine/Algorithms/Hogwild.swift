import LapwingCore
import LapwingJob

/// Hogwild! (Niu, Recht, Ré, Wright, NeurIPS 2011): one model for the machine, every worker
/// writing its steps into it without locks. No knobs beyond the batch.
struct Hogwild: TrainingAlgorithm {
    static let name = "hogwild"
    static let workersCanBeReplaced = true
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

/// The clock of an asynchronous step (Hogwild!, LAP-SGD, LPP-SGD, Overlap Local-SGD): every 8
/// steps it looks at the job's state word (waiting while paused) and at the replica's node-level
/// step count, the learning rate's clock; each step claims its samples from the job's budget.
/// It never waits on another worker.
struct AsynchronousClock {
    let shared: SharedState
    /// The workers of this replica: their steps together are the node-level count.
    let replicaWorkers: [Int]
    let totalSamples: Int
    let schedule: LearningRateSchedule
    /// Node-level steps planned for this replica: its share of all steps.
    let plannedNodeSteps: Double
    var nodeSteps = 0
    var phase = 0

    init(_ c: WorkerContext) {
        shared = c.shared
        replicaWorkers = c.replicaWorkers[c.replica]
        totalSamples = c.totalSamples
        schedule = c.spec.schedule
        let b = Double(max(1, c.spec.batch))
        plannedNodeSteps = max(1, Double(c.totalSamples) / b * Double(replicaWorkers.count) / Double(c.spec.workers))
    }

    /// Starts a step: the samples it may train (the last may be short), or nil when the worker
    /// is done (the budget is spent or the job is stopping).
    @inline(__always)
    mutating func begin(_ t: Trainer) -> Int? {
        phase = t.steps & 7
        if phase == 0 {
            guard shared.waitWhilePaused() else { return nil }
            nodeSteps = shared.steps(of: replicaWorkers)
        }
        let n = shared.claimSamples(t.batch, total: totalSamples)
        return n == 0 ? nil : n
    }

    /// Training progress at this step (0 at the start, 1 at the end), by the node-level count.
    @inline(__always)
    var progress: Double { Double(nodeSteps + phase) / plannedNodeSteps }

    @inline(__always)
    var rate: Float { schedule.rate(at: progress) }
}

/// The asynchronous step of Hogwild! and LAP-SGD: claim this step's samples, compute the
/// gradient at the worker's replica as it is (no lock), and write the step into it in place.
struct AsynchronousStep: WorkerStep {
    let x: UnsafeMutablePointer<Float>
    var clock: AsynchronousClock

    init(_ c: WorkerContext) {
        x = c.shared.replica(c.replica)
        clock = AsynchronousClock(c)
    }

    @inline(__always)
    mutating func step(_ t: inout Trainer) -> Bool {
        guard let n = clock.begin(t) else { return false }
        t.draw(n)
        let loss = t.gradient(at: x)
        guard loss.isFinite else {
            t.finish(samples: n, loss: loss)
            return false
        }
        t.apply(rate: clock.rate, to: x)
        t.finish(samples: n, loss: loss)
        return true
    }
}
