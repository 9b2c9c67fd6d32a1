import LapwingCore
import LapwingData
import LapwingModels

/// Scores the average of the replicas on the test rows, from a private snapshot, while the
/// workers keep training (design section 7: evaluation never stops a worker).
final class Evaluator {
    let model: FeedForwardModel
    let data: TrainingData
    let kernel: AveragingKernel
    let snapshot: UnsafeMutablePointer<Float>
    let workspace: ModelWorkspace
    static let batch = 512

    init(model: FeedForwardModel, data: TrainingData, replicas: Int, shared: SharedState) {
        self.model = model
        self.data = data
        kernel = AveragingKernel(replicas: (0..<replicas).map { shared.replica($0) }, count: model.parameterCount)
        snapshot = .allocate(capacity: model.parameterCount)
        snapshot.initialize(repeating: 0, count: model.parameterCount)
        workspace = model.makeWorkspace(batchCapacity: Self.batch)
    }

    func deallocate() {
        kernel.deallocate()
        snapshot.deallocate()
    }

    /// Loss and accuracy of the averaged model on the test rows. `consistent` says the workers
    /// have stopped (the snapshot is exact); otherwise it is a racy but harmless read.
    func evaluate(consistent: Bool) -> Evaluation {
        kernel.average(into: snapshot)
        var total = Evaluation()
        var buffer = BatchBuffer(cols: data.test.cols, sparse: data.test.isSparse, capacity: Self.batch)
        var start = 0
        while start < data.testRows.count {
            let end = min(start + Self.batch, data.testRows.count)
            data.test.gather(rows: data.testRows[start..<end], into: &buffer)
            total += buffer.withBatch { model.evaluate(params: snapshot, batch: $0, workspace: workspace) }
            start = end
        }
        return total
    }

    /// The tensor and index of the first parameter of the last snapshot that is not finite (NaN
    /// or infinite), or nil when all are finite.
    func firstNonFiniteParameter() -> (block: String, index: Int)? {
        for b in model.blocks {
            for k in 0..<b.count where !snapshot[b.offset + k].isFinite { return (b.name, k) }
        }
        return nil
    }

    /// Writes the last snapshot as safetensors, with the model spec and accuracy as metadata.
    func writeModel(to path: String, spec: JobSpec, accuracy: Double) throws(LapwingError) {
        let tensors = model.blocks.map { b in
            SafeTensors.Tensor(
                name: b.name, shape: b.shape,
                values: Array(UnsafeBufferPointer(start: snapshot + b.offset, count: b.count)))
        }
        try SafeTensors.write(
            tensors,
            metadata: [
                "format": "lapwing", "model": spec.model, "loss": model.loss.rawValue, "data": spec.data,
                "layout": "y = x @ weight + bias, weight is [in, out]; ReLU between layers",
                "test_accuracy": "\(accuracy)", "job": spec.id, "algorithm": spec.algorithm.rawValue,
            ], to: path)
    }
}
