import LapwingCore
import LapwingData
import Testing

@testable import LapwingModels

/// Finite-difference checks of every model's gradient, on dense and on sparse rows.
@Suite struct GradientCheckTests {
    init() throws { try BLAS.setUp() }

    struct Case: CustomTestStringConvertible, Sendable {
        var spec: String
        var classes: Int?
        var sparse: Bool
        var testDescription: String { "\(spec) \(sparse ? "sparse" : "dense")" }
    }

    static let cases: [Case] = [
        ("logistic", 2), ("svm", 2), ("leastsquares", nil), ("softmax", 4), ("mlp:7-5-4-3", 3), ("mlp:5", 3),
    ].flatMap { spec, classes in [false, true].map { Case(spec: spec, classes: classes, sparse: $0) } }

    /// A batch of `n` random rows with `cols` features (about half zero when sparse) and labels of the right kind.
    static func makeBatch(n: Int, cols: Int, sparse: Bool, classes: Int?, seed: UInt64) -> BatchBuffer {
        var rng = SeededGenerator(seed: seed)
        var buf = BatchBuffer(cols: cols, sparse: sparse, capacity: n)
        for _ in 0..<n {
            let label: Float
            switch classes {
            case nil: label = rng.nextUnitFloat() * 4 - 2
            case 2?: label = rng.nextIndex(2) == 0 ? -1 : 1
            case let k?: label = Float(rng.nextIndex(k))
            }
            let row = (0..<cols).map { _ in rng.nextUnitFloat() * 2 - 1 }
            if sparse {
                let keep = (0..<cols).filter { _ in rng.nextIndex(2) == 0 }
                let idx = keep.map { Int32($0) }
                let val = keep.map { row[$0] }
                idx.withUnsafeBufferPointer { i in
                    val.withUnsafeBufferPointer { v in buf.append(sparseIndices: i, values: v, label: label) }
                }
            } else {
                row.withUnsafeBufferPointer { buf.append(dense: $0, label: label) }
            }
        }
        return buf
    }

    @Test(arguments: cases)
    func gradientMatchesFiniteDifferences(_ c: Case) throws {
        let cols = 7
        let model = try FeedForwardModel(spec: ModelSpec.parse(c.spec), features: cols, classes: c.classes)
        var params = [Float](repeating: 0, count: model.parameterCount)
        params.withUnsafeMutableBufferPointer { model.initialize($0, seed: 7) }
        let batch = Self.makeBatch(n: 6, cols: cols, sparse: c.sparse, classes: c.classes, seed: 11)
        let ws = model.makeWorkspace(batchCapacity: 8)
        let grad = model.makeGradientBuffer()

        let loss = batch.withBatch { b in model.gradient(params: params, batch: b, into: grad, workspace: ws) }
        let analytic = Array(UnsafeBufferPointer(start: grad.values, count: model.parameterCount))
        func meanLoss(_ p: [Float]) -> Double {
            batch.withBatch { b in model.evaluate(params: p, batch: b, workspace: ws).meanLoss }
        }
        #expect(abs(Double(loss) - meanLoss(params)) < 1e-5 * max(1, abs(Double(loss))))

        let eps: Float = 1e-3
        var worst = 0.0
        for k in 0..<model.parameterCount {
            var p = params
            p[k] += eps
            let up = meanLoss(p)
            p[k] = params[k] - eps
            let down = meanLoss(p)
            let numeric = (up - down) / Double(2 * eps)
            let err = abs(numeric - Double(analytic[k])) / max(1e-2, abs(numeric) + abs(Double(analytic[k])))
            worst = max(worst, err)
        }
        #expect(worst < 2e-2, "worst relative error \(worst) for \(c.testDescription)")
    }

    /// A sparse step touches exactly the features present and agrees with the dense step on the same rows.
    @Test(arguments: ["softmax", "mlp:7-5-3", "logistic"])
    func sparseStepEqualsDenseStep(_ spec: String) throws {
        let classes = spec == "logistic" ? 2 : 3
        let model = try FeedForwardModel(spec: ModelSpec.parse(spec), features: 7, classes: classes)
        var params = [Float](repeating: 0, count: model.parameterCount)
        params.withUnsafeMutableBufferPointer { model.initialize($0, seed: 3) }
        let sparse = Self.makeBatch(n: 5, cols: 7, sparse: true, classes: classes, seed: 5)
        var dense = BatchBuffer(cols: 7, sparse: false)
        var present = Set<Int32>()
        sparse.withBatch { b in
            guard case .sparse(let off, let idx, let val) = b.rows else { return }
            for r in 0..<b.count {
                var row = [Float](repeating: 0, count: 7)
                for k in Int(off[r])..<Int(off[r + 1]) {
                    row[Int(idx[k])] = val[k]
                    present.insert(idx[k])
                }
                row.withUnsafeBufferPointer { dense.append(dense: $0, label: b.labels[r]) }
            }
        }
        let ws = model.makeWorkspace(batchCapacity: 8)
        let gs = model.makeGradientBuffer(), gd = model.makeGradientBuffer()
        // A dense step first leaves values everywhere; the sparse step must not see them.
        dense.withBatch { b in _ = model.gradient(params: params, batch: b, into: gs, workspace: ws) }
        let ls = sparse.withBatch { b in model.gradient(params: params, batch: b, into: gs, workspace: ws) }
        let ld = dense.withBatch { b in model.gradient(params: params, batch: b, into: gd, workspace: ws) }
        #expect(abs(ls - ld) < 1e-5)
        #expect(Set(gs.touched) == present)
        for k in 0..<model.parameterCount {
            #expect(abs(gs.values[k] - gd.values[k]) < 1e-5, "parameter \(k)")
        }
        var covered = 0
        gs.forEachRange { _, n in covered += n }
        #expect(covered == present.count * model.layers[0].outputs + model.parameterCount - model.layers[0].biasOffset)
    }
}
