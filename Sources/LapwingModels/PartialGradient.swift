import LapwingData

/// Partial back-propagation (LPP-SGD's partial steps, Bhattacharya et al., "Local SGD Meets
/// Asynchrony"; code bapi/LPP-SGD): the gradient of the loss for one contiguous block of the
/// parameters only, at less than the cost of the full gradient.
///
/// The parameters are one flat vector, ordered as the tensors are (layer 0's weights, its bias,
/// layer 1's weights, ...). `partition(into:)` cuts it into W contiguous blocks of about d/W
/// parameters; `partialGradient` then computes a block's gradient and nothing else:
///
/// - the forward pass is always whole (the loss needs it);
/// - the deltas are propagated down only to the lowest layer the block reaches: a block in the
///   last layer needs no back-propagation below it at all;
/// - of each layer's weight-gradient GEMM (A^T delta) only the rows in the block are computed,
///   and layers outside the block get none; bias gradients only for the block's columns.
///
/// For an MLP whose hidden layer holds most of the weights (784-256-10), a block in the first
/// layer still costs the whole forward pass and the deltas down to that layer, but only its share
/// of the first layer's weight GEMM, the largest of the backward pass.
extension FeedForwardModel {
    /// W contiguous blocks covering the parameters in order, about d/W each. A cut that would
    /// fall inside a weight matrix moves to the nearest whole row (the `outputs` weights of one
    /// input), so a block's weight gradient is a GEMM over whole rows; cuts in a bias stay where
    /// they fall. Blocks differ in size by at most one row of a weight matrix.
    public func partition(into count: Int) -> [Range<Int>] {
        precondition(count >= 1, "at least one block")
        var cuts = [0]
        for k in 1..<count {
            let nominal = Int((Double(parameterCount) * Double(k) / Double(count)).rounded())
            cuts.append(max(cuts[k - 1], snappedToRow(nominal)))
        }
        cuts.append(parameterCount)
        return (0..<count).map { cuts[$0]..<cuts[$0 + 1] }
    }

    /// `offset` moved to the nearest row boundary of the weight matrix it falls in.
    func snappedToRow(_ offset: Int) -> Int {
        for layer in layers where offset > layer.weightOffset && offset < layer.biasOffset {
            let rows = (Double(offset - layer.weightOffset) / Double(layer.outputs)).rounded()
            return layer.weightOffset + Int(rows) * layer.outputs
        }
        return offset
    }

    /// The mean loss over `batch` at `params`, and the gradient of the parameters in `block`
    /// written to `grad.values[block]` (nothing outside the block is written). The block's cuts
    /// inside weight matrices must lie on whole rows (as `partition(into:)` makes them).
    ///
    /// Dense steps honour `grad.accumulate` as `gradient` does (the buffer outside the block,
    /// a heavy-ball velocity, is left as it was); sparse steps mark only the first-layer rows
    /// of the block's features as touched.
    @discardableResult
    public func partialGradient(
        params: UnsafePointer<Float>, batch: Batch, block: Range<Int>, into grad: GradientBuffer,
        workspace ws: ModelWorkspace
    ) -> Float {
        let n = batch.count
        guard n > 0 else { return 0 }
        precondition(block.lowerBound >= 0 && block.upperBound <= parameterCount, "block \(block) outside the parameters")
        let outputs = forward(params, batch, ws)
        var delta = ws.deltaA
        var spare = ws.deltaB
        let lossSum = Losses.lossAndDelta(loss, outputs, batch.labels, n, self.outputs, delta)
        let mean = Float(lossSum / Double(n))
        guard let lowest = layers.firstIndex(where: { block.overlaps($0.weightOffset..<($0.biasOffset + $0.outputs)) })
        else { return mean }
        let g = grad.values
        if batch.isSparse { grad.beginSparse() } else { grad.beginDense() }
        let beta: Float = batch.isSparse ? 0 : grad.accumulate
        precondition(!batch.isSparse || grad.accumulate == 0, "a sparse step cannot accumulate into the buffer")

        for l in stride(from: layers.count - 1, through: lowest, by: -1) {
            let layer = layers[l]
            let o = layer.outputs
            let bias = block.clamped(to: layer.biasOffset..<(layer.biasOffset + o))
            if !bias.isEmpty {
                let c0 = bias.lowerBound - layer.biasOffset
                Self.columnSums(delta + c0, rows: n, columns: bias.count, stride: o, into: g + bias.lowerBound, beta: beta)
            }
            let weights = block.clamped(to: layer.weightOffset..<layer.biasOffset)
            if !weights.isEmpty {
                let first = weights.lowerBound - layer.weightOffset
                precondition(
                    first % o == 0 && weights.count % o == 0,
                    "block \(block) cuts layer \(l)'s weights inside a row (partition(into:) cuts on rows)")
                let r0 = first / o
                let rows = weights.count / o
                let dw = g + weights.lowerBound
                if l > 0 {
                    // dW[r0..<r0+rows] = A[:, r0..<r0+rows]^T delta
                    sgemm(
                        transA: true, transB: false, m: rows, n: o, k: n, alpha: 1, ws.activations[l - 1] + r0,
                        lda: layer.inputs, delta, ldb: o, beta: beta, dw, ldc: o)
                } else {
                    switch batch.rows {
                    case .dense(let x):
                        sgemm(
                            transA: true, transB: false, m: rows, n: o, k: n, alpha: 1, x + r0, lda: layer.inputs, delta,
                            ldb: o, beta: beta, dw, ldc: o)
                    case .sparse(let offsets, let indices, let values):
                        let features = Int32(r0)..<Int32(r0 + rows)
                        for r in 0..<n {
                            let d = delta + r * o
                            for k in Int(offsets[r])..<Int(offsets[r + 1]) where features.contains(indices[k]) {
                                Kernels.axpy(values[k], d, grad.touch(Int(indices[k])), o)
                            }
                        }
                    }
                }
            }
            if l > lowest {
                // The block reaches below this layer: its input's delta, (delta W^T) masked by ReLU.
                let a = ws.activations[l - 1]
                sgemm(
                    transA: false, transB: true, m: n, n: layer.inputs, k: o, alpha: 1, delta, lda: o,
                    params + layer.weightOffset, ldb: o, beta: 0, spare, ldc: layer.inputs)
                Kernels.reluBackward(spare, a, n * layer.inputs)
                swap(&delta, &spare)
            }
        }
        return mean
    }

    /// out[j] = beta * out[j] + sum over rows r of m[r * stride + j], for j in 0..<columns.
    @inline(__always)
    static func columnSums(
        _ m: UnsafePointer<Float>, rows: Int, columns: Int, stride: Int, into out: UnsafeMutablePointer<Float>, beta: Float
    ) {
        if beta == 0 {
            out.update(from: m, count: columns)
        } else {
            for j in 0..<columns { out[j] = beta * out[j] + m[j] }
        }
        for r in 1..<max(rows, 1) { Kernels.add(m + r * stride, out, columns) }
    }
}
