import LapwingCore
import LapwingData
import LapwingJob
import LapwingModels

/// One worker process (design section 4): its private `Trainer` and its algorithm's step, run
/// until the step says it is done. What a step reads and writes, and whether it ever waits on
/// another process, is the algorithm's (`Algorithms/`); the asynchronous ones never wait. Each
/// step claims its samples from the job's budget first (the last step may be short), so the
/// workers together train exactly the samples asked for; a step whose loss is not finite ends
/// the worker with that loss recorded, for the host to fail the job as diverged.
struct Worker {
    let context: WorkerContext
    let algorithm: any TrainingAlgorithm
    let model: FeedForwardModel
    let data: Dataset
    /// The training rows of `data` (all of them, or what the holdout left).
    let trainRows: [Int]

    func run() {
        let shape = algorithm.trainerShape(context)
        // The worker's own rows under --data-split; a worker with a shard of its own samples it
        // in its own order (a shared order over different shards would mean nothing).
        let workers = context.replicaWorkers.reduce(0) { $0 + $1.count }
        let spec = context.spec
        // Across machines the split deals rows to the machines (`MachineShards`) instead.
        let split = spec.machine == nil ? spec.dataSplit : .iid
        let rows = DataShards.rows(split, worker: context.index, workers: workers, of: trainRows, seed: spec.seed) {
            data.label($0)
        }
        var trainer = Trainer(
            context, model: model, data: data, trainRows: rows, orderStream: split == .iid ? shape.orderStream : nil,
            capacity: shape.capacity, fuseMomentum: shape.fuseMomentum)
        defer { trainer.release() }
        drive(algorithm.workerStep(context), &trainer)
    }

    private func drive<S: WorkerStep>(_ step: S, _ trainer: inout Trainer) {
        var step = step
        runSteps(&step, &trainer)
    }
}

/// How an algorithm wants a worker's `Trainer`: a shared order over the rows (nil: the
/// worker's own), the most rows one step draws (nil: the batch), and whether dense heavy-ball
/// steps may fold the velocity into the gradient buffer (not when the buffer's gradient is
/// exchanged raw).
struct TrainerShape {
    var orderStream: UInt64? = nil
    var capacity: Int? = nil
    var fuseMomentum = true
}
