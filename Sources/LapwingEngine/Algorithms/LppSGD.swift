import LapwingCore
import LapwingJob
import LapwingModels

/// LPP-SGD ("Local SGD Meets Asynchrony", Bhattacharya et al.; code bapi/LPP-SGD, train/LPPSGD.py):
/// LAP-SGD (a replica per NUMA node, Hogwild! workers on it, the non-blocking averager of design
/// section 5, with its `--period` and `--averaging-warmup`) plus partial back-propagation. Once
/// `--partition-after` of training has passed, each worker alternates full steps with partial
/// steps (the reference toggles `is_passm` after every minibatch once `prepassmepochs` are
/// done): a partial step computes and applies the gradient of the worker's own block of
/// parameters only (momentum too: the velocity outside the block is left as it is, as the
/// reference's optimizer skips those tensors).
///
/// Blocks: the parameters in order (each layer's weights, then its bias) cut into W contiguous
/// blocks of about d/W (`FeedForwardModel.partition`), worker w taking block w, W the job's
/// workers. The reference's `get_indices` hands out whole tensors, which suits its CNNs of dozens
/// of tensors; an MLP has two per layer and one of them holds nearly all the weights, so Lapwing
/// cuts inside tensors (on whole rows of a weight matrix) to keep the blocks equal. The
/// reference splits a node's model among that node's processes; Lapwing splits it among all W
/// workers, so workers sharing a replica still update disjoint blocks in partial steps, and a job
/// with one worker per replica (the 2-worker, 2-replica default on two nodes) still has partial
/// steps at all.
struct LppSGD: TrainingAlgorithm {
    static let name = "lpp-sgd"
    static let workersCanBeReplaced = true
    static let summary =
        "lap-sgd, then each worker alternates full steps with steps on its own block of parameters (partial back-propagation; Bhattacharya et al.)"
    static let knobs: [Knob] =
        LapSGD.knobs + [
            Knob(
                "partition-after", default: 0.1, range: 0...1,
                help: "fraction of training after which full and partial steps alternate")
        ]

    let lap: LapSGD
    let partitionAfter: Double

    init(spec: JobSpec, knobs: Knobs) throws(LapwingError) {
        lap = try LapSGD(spec: spec, knobs: knobs)
        partitionAfter = knobs.double("partition-after")
    }

    static let compressionSite: CompressionSite? = .coordinator

    func replicaCount(numaNodes: Int) throws(LapwingError) -> Int { try lap.replicaCount(numaNodes: numaNodes) }

    func coordinator(_ c: CoordinatorContext) -> (any Coordinator)? { lap.coordinator(c) }

    func workerStep(_ c: WorkerContext) -> any WorkerStep { PartialStep(c, partitionAfter: partitionAfter) }

    /// Across machines, lap-sgd's (as in the LPP-SGD code, which averages its nodes alike).
    func machineLevel() -> MachineLevel? { lap.machineLevel() }
}

/// LAP-SGD's asynchronous step (`AsynchronousStep`), alternating with partial steps after the
/// partition point. Never waits on another process.
struct PartialStep: WorkerStep {
    let x: UnsafeMutablePointer<Float>
    var clock: AsynchronousClock
    let partitionAfter: Double
    /// This worker's block: block `index` of `workers`, cut on the model (first step).
    let index: Int
    let workers: Int
    var block: Range<Int>? = nil
    /// The next step after the partition point is a partial one.
    var partialNext = false

    init(_ c: WorkerContext, partitionAfter: Double) {
        x = c.shared.replica(c.replica)
        clock = AsynchronousClock(c)
        self.partitionAfter = partitionAfter
        index = c.index
        workers = c.spec.workers
    }

    @inline(__always)
    mutating func step(_ t: inout Trainer) -> Bool {
        guard let n = clock.begin(t) else { return false }
        t.draw(n)
        let progress = clock.progress
        let mine = block ?? t.model.partition(into: workers)[index]
        block = mine
        // A block of the whole model (one worker) makes every step a full one.
        let partial = partialNext && mine.count < t.model.parameterCount
        let loss = partial ? t.partialGradient(at: x, block: mine) : t.gradient(at: x)
        guard loss.isFinite else {
            t.finish(samples: n, loss: loss)
            return false
        }
        let rate = clock.schedule.rate(at: progress)
        if partial {
            t.apply(rate: rate, to: x, block: mine)
        } else {
            t.apply(rate: rate, to: x)
        }
        partialNext = progress >= partitionAfter && !partialNext
        t.finish(samples: n, loss: loss)
        return true
    }
}

extension Trainer {
    /// Writes a partial step into `x[block]` only: the step for the gradient in `grad` over the
    /// block (private momentum and weight decay as in `apply(rate:to:)`).
    @inline(__always)
    func apply(rate lr: Float, to x: UnsafeMutablePointer<Float>, block: Range<Int>) {
        spec.sgd.apply(rate: lr, gradient: grad, velocity: velocity, fused: fused, to: x, block: block)
    }
}

extension SGDRule {
    /// The step of `apply(rate:gradient:velocity:to:)` (or, `fused`, of `applyFused`) over the
    /// parameters in `block` only; nothing outside it is read or written. Sparse steps visit
    /// the ranges the step wrote, cut to the block.
    func apply(
        rate lr: Float, gradient grad: GradientBuffer, velocity v: UnsafeMutablePointer<Float>?, fused: Bool,
        to x: UnsafeMutablePointer<Float>, block: Range<Int>
    ) {
        let g = grad.values
        if fused {
            // The buffer holds v = mu v + g over the block (the partial GEMMs accumulated there).
            let wd = weightDecay
            if wd == 0 {
                for i in block { x[i] -= lr * g[i] }
            } else {
                for i in block {
                    let vi = g[i] + wd * x[i]
                    g[i] = vi
                    x[i] -= lr * vi
                }
            }
            return
        }
        grad.forEachRange { start, n in
            let r = (start..<(start + n)).clamped(to: block)
            if !r.isEmpty { self.update(lr, g + r.lowerBound, v.map { $0 + r.lowerBound }, x + r.lowerBound, r.count) }
        }
    }
}
