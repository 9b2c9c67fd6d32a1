import LapwingCore
import LapwingData
import LapwingModels

/// One worker process's training loop (design section 4): draw a small minibatch from its own
/// seeded order over the data, read its replica without locks, compute the gradient into a
/// private buffer, update private momentum, write the step into the replica in place, and
/// bump its own counters. It never waits on another process. Each step claims its samples from
/// the job's budget first (the last step may be short), so the workers together train exactly
/// the samples asked for; a step whose loss is not finite ends the worker with that loss
/// recorded, for the host to fail the job as diverged.
struct Worker {
    let index: Int
    let replica: Int
    let spec: JobSpec
    let model: FeedForwardModel
    let data: Dataset
    /// The training rows of `data` (all of them, or what the holdout left).
    let trainRows: [Int]
    let shared: SharedState
    /// Workers that share this worker's replica (their steps make the node-level count).
    let replicaWorkers: [Int]
    /// Samples of all workers together at which training ends.
    let totalSamples: Int

    func run() {
        let x = shared.replica(replica)
        var rng = SeededGenerator(seed: spec.seed, stream: 1000 + UInt64(index))
        var order = trainRows
        var cursor = order.count
        let b = min(spec.batch, trainRows.count)
        var buffer = BatchBuffer(cols: data.cols, sparse: data.isSparse, capacity: b)
        var rows = [Int](repeating: 0, count: b)
        let ws = model.makeWorkspace(batchCapacity: b)
        let grad = model.makeGradientBuffer()
        // Dense heavy-ball steps keep the velocity in the gradient buffer (folded into the GEMMs).
        let fused = spec.sgd.canFuse(sparse: data.isSparse)
        if fused { grad.accumulate = spec.sgd.momentum }
        let velocity: UnsafeMutablePointer<Float>? =
            spec.sgd.momentum > 0 && !fused ? .allocate(capacity: model.parameterCount) : nil
        velocity?.initialize(repeating: 0, count: model.parameterCount)
        defer { velocity?.deallocate() }
        // Node-level steps planned for this worker's replica: its share of all steps.
        let plannedNodeSteps = max(1, Double(totalSamples) / Double(b) * Double(replicaWorkers.count) / Double(spec.workers))
        var nodeSteps = 0
        var step = 0
        var lossEMA: Float = .nan

        while true {
            if step & 7 == 0 {
                if !shared.waitWhilePaused() { break }
                nodeSteps = shared.steps(of: replicaWorkers)
            }
            let n = shared.claimSamples(b, total: totalSamples)
            if n == 0 { break }
            for k in 0..<n {
                if cursor == order.count {
                    order.shuffle(using: &rng)
                    cursor = 0
                }
                rows[k] = order[cursor]
                cursor += 1
            }
            data.gather(rows: rows[..<n], into: &buffer)
            let loss = buffer.withBatch { batch in
                model.gradient(params: x, batch: batch, into: grad, workspace: ws)
            }
            if step == 0 { shared.recordFirstLoss(slot: index, loss: loss) }
            if !loss.isFinite {
                shared.recordStep(slot: index, samples: n, loss: loss)
                break
            }
            let lr = spec.schedule.rate(at: Double(nodeSteps + (step & 7)) / plannedNodeSteps)
            if fused {
                spec.sgd.applyFused(rate: lr, velocity: grad, to: x)
            } else {
                spec.sgd.apply(rate: lr, gradient: grad, velocity: velocity, to: x)
            }
            lossEMA = lossEMA.isNaN ? loss : 0.98 * lossEMA + 0.02 * loss
            step += 1
            shared.recordStep(slot: index, samples: n, loss: lossEMA)
        }
    }
}
