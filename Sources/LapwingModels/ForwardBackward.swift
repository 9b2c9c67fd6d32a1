import LapwingData

extension FeedForwardModel {
    /// Forward pass: the activations of every layer for `batch` (the last one holds the raw
    /// outputs, before the loss). Returns the output activations.
    @discardableResult
    func forward(_ p: UnsafePointer<Float>, _ batch: Batch, _ ws: ModelWorkspace) -> UnsafeMutablePointer<Float> {
        precondition(batch.count <= ws.capacity, "batch of \(batch.count) rows in a workspace for \(ws.capacity)")
        precondition(batch.cols == inputs, "batch of \(batch.cols) features for a model of \(inputs) inputs")
        let n = batch.count
        for (l, layer) in layers.enumerated() {
            let out = ws.activations[l]
            let w = p + layer.weightOffset
            let b = p + layer.biasOffset
            let o = layer.outputs
            if l == 0, case .sparse(let offsets, let indices, let values) = batch.rows {
                for r in 0..<n {
                    let z = out + r * o
                    z.update(from: b, count: o)
                    for k in Int(offsets[r])..<Int(offsets[r + 1]) {
                        Kernels.axpy(values[k], w + Int(indices[k]) * o, z, o)
                    }
                }
            } else {
                let input: UnsafePointer<Float>
                if l == 0, case .dense(let x) = batch.rows { input = x } else { input = UnsafePointer(ws.activations[l - 1]) }
                sgemm(
                    transA: false, transB: false, m: n, n: o, k: layer.inputs, alpha: 1, input, lda: layer.inputs, w,
                    ldb: o, beta: 0, out, ldc: o)
                for r in 0..<n { Kernels.add(b, out + r * o, o) }
            }
            if l < layers.count - 1 { Kernels.relu(out, n * o) }
        }
        return ws.activations[layers.count - 1]
    }

    /// The mean loss over `batch` at parameters `params`, and its gradient written to `grad`.
    /// Dense rows go through GEMM; sparse rows touch only the first-layer blocks of their
    /// non-zero features.
    @discardableResult
    public func gradient(
        params: UnsafePointer<Float>, batch: Batch, into grad: GradientBuffer, workspace ws: ModelWorkspace
    ) -> Float {
        let n = batch.count
        guard n > 0 else { return 0 }
        let outputs = forward(params, batch, ws)
        let last = layers.count - 1
        var delta = ws.deltaA
        var spare = ws.deltaB
        let lossSum = Losses.lossAndDelta(loss, outputs, batch.labels, n, self.outputs, delta)
        let g = grad.values
        if batch.isSparse { grad.beginSparse() } else { grad.beginDense() }
        // Dense steps may fold the gradient into what the buffer holds (momentum: v = mu v + g).
        let beta: Float = batch.isSparse ? 0 : grad.accumulate
        precondition(!batch.isSparse || grad.accumulate == 0, "a sparse step cannot accumulate into the buffer")

        for l in stride(from: last, through: 0, by: -1) {
            let layer = layers[l]
            let o = layer.outputs
            Kernels.columnSums(delta, n, o, g + layer.biasOffset, beta: beta)
            if l > 0 {
                let a = ws.activations[l - 1]
                // dW = A^T delta
                sgemm(
                    transA: true, transB: false, m: layer.inputs, n: o, k: n, alpha: 1, a, lda: layer.inputs, delta,
                    ldb: o, beta: beta, g + layer.weightOffset, ldc: o)
                // delta of the layer below = (delta W^T) masked by ReLU
                sgemm(
                    transA: false, transB: true, m: n, n: layer.inputs, k: o, alpha: 1, delta, lda: o,
                    params + layer.weightOffset, ldb: o, beta: 0, spare, ldc: layer.inputs)
                Kernels.reluBackward(spare, a, n * layer.inputs)
                swap(&delta, &spare)
            } else {
                switch batch.rows {
                case .dense(let x):
                    sgemm(
                        transA: true, transB: false, m: layer.inputs, n: o, k: n, alpha: 1, x, lda: layer.inputs,
                        delta, ldb: o, beta: beta, g + layer.weightOffset, ldc: o)
                case .sparse(let offsets, let indices, let values):
                    for r in 0..<n {
                        let d = delta + r * o
                        for k in Int(offsets[r])..<Int(offsets[r + 1]) {
                            Kernels.axpy(values[k], d, grad.touch(Int(indices[k])), o)
                        }
                    }
                }
            }
        }
        return Float(lossSum / Double(n))
    }

    /// Loss sum and number of correct predictions over `batch` (no gradient).
    public func evaluate(params: UnsafePointer<Float>, batch: Batch, workspace ws: ModelWorkspace) -> Evaluation {
        var e = Evaluation()
        guard batch.count > 0 else { return e }
        let outputs = forward(params, batch, ws)
        e.lossSum = Losses.loss(loss, outputs, batch.labels, batch.count, self.outputs)
        e.count = batch.count
        if isClassifier {
            for r in 0..<batch.count where predictedValue(outputs + r * self.outputs) == Losses.classOf(loss, batch.labels[r]) {
                e.correct += 1
            }
        }
        return e
    }

    /// Predictions for `batch`: the class index (softmax), ±1 (binary models) or the value
    /// (least squares), one per row.
    public func predict(
        params: UnsafePointer<Float>, batch: Batch, workspace ws: ModelWorkspace, into out: UnsafeMutablePointer<Float>
    ) {
        let outputs = forward(params, batch, ws)
        for r in 0..<batch.count { out[r] = predictedValue(outputs + r * self.outputs) }
    }

    @inline(__always)
    func predictedValue(_ z: UnsafePointer<Float>) -> Float {
        switch loss {
        case .softmax:
            var best = 0
            for c in 1..<outputs where z[c] > z[best] { best = c }
            return Float(best)
        case .logistic, .hinge: return z[0] >= 0 ? 1 : -1
        case .squared: return z[0]
        }
    }
}
