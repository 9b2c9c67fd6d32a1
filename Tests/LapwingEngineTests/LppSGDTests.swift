import Foundation
import LapwingCore
import LapwingData
import LapwingJob
import LapwingModels
import Testing

@testable import LapwingEngine

/// lpp-sgd's partition and partial step, on the model and the update rule (no job).
@Suite struct LppSGDPartialStepTests {
    init() throws { try BLAS.setUp() }

    /// A small three-layer MLP and a dense (or sparse) batch of random rows, for `body`.
    func withProblem(
        sparse: Bool = false, _ body: (FeedForwardModel, UnsafeMutablePointer<Float>, Batch) throws -> Void
    ) throws {
        let (features, classes, n) = (20, 5, 12)
        let model = try FeedForwardModel(spec: .parse("mlp:20-16-8-5"), features: features, classes: classes)
        let x = UnsafeMutablePointer<Float>.allocate(capacity: model.parameterCount)
        defer { x.deallocate() }
        model.initialize(UnsafeMutableBufferPointer(start: x, count: model.parameterCount), seed: 3)
        var rng = SeededGenerator(seed: 11)
        var dense = [Float](repeating: 0, count: n * features)
        var offsets: [Int32] = [0], indices: [Int32] = [], values: [Float] = []
        for r in 0..<n {
            for f in 0..<features where !sparse || rng.nextUnitFloat() < 0.3 {
                let v = rng.nextUnitFloat()
                dense[r * features + f] = v
                indices.append(Int32(f))
                values.append(v)
            }
            offsets.append(Int32(indices.count))
        }
        let labels = (0..<n).map { _ in Float(rng.nextIndex(classes)) }
        try labels.withUnsafeBufferPointer { l in
            if sparse {
                try offsets.withUnsafeBufferPointer { o in
                    try indices.withUnsafeBufferPointer { i in
                        try values.withUnsafeBufferPointer { v in
                            let rows = Batch.Rows.sparse(offsets: o.baseAddress!, indices: i.baseAddress!, values: v.baseAddress!)
                            try body(model, x, Batch(count: n, cols: features, rows: rows, labels: l.baseAddress!))
                        }
                    }
                }
            } else {
                try dense.withUnsafeBufferPointer { d in
                    try body(model, x, Batch(count: n, cols: features, rows: .dense(d.baseAddress!), labels: l.baseAddress!))
                }
            }
        }
    }

    @Test func partitionCutsTheOrderedParametersIntoContiguousBlocksOfAboutEqualSize() throws {
        for (name, features, classes) in [("mlp:784-256-10", 784, 10), ("mlp:20-16-8-5", 20, 5), ("softmax", 784, 10)] {
            let model = try FeedForwardModel(spec: .parse(name), features: features, classes: classes)
            let d = model.parameterCount
            let widestRow = model.layers.map(\.outputs).max()!
            for w in 1...7 {
                let blocks = model.partition(into: w)
                #expect(blocks.count == w && blocks[0].lowerBound == 0 && blocks[w - 1].upperBound == d, "\(name) W=\(w)")
                for k in 1..<w { #expect(blocks[k].lowerBound == blocks[k - 1].upperBound) }
                for b in blocks {
                    #expect(abs(b.count - d / w) <= widestRow, "\(name) W=\(w): \(b.count) vs \(d / w)")
                    // A cut inside a weight matrix lies on a whole row.
                    for layer in model.layers where b.lowerBound > layer.weightOffset && b.lowerBound < layer.biasOffset {
                        #expect((b.lowerBound - layer.weightOffset) % layer.outputs == 0)
                    }
                }
            }
        }
    }

    /// The partial gradient equals the full gradient on the block and writes nothing outside it.
    @Test(arguments: [false, true]) func partialGradientIsTheFullGradientRestrictedToTheBlock(sparse: Bool) throws {
        try withProblem(sparse: sparse) { model, x, batch in
            let d = model.parameterCount
            let ws = model.makeWorkspace(batchCapacity: batch.count)
            let full = model.makeGradientBuffer()
            let fullLoss = model.gradient(params: x, batch: batch, into: full, workspace: ws)
            for w in [1, 2, 3, 4, 7] {
                for (k, block) in model.partition(into: w).enumerated() {
                    let partial = model.makeGradientBuffer()
                    // A sentinel outside the block (sparse steps zero their touched rows first, so 0 there).
                    let sentinel: Float = sparse ? 0 : 1e30
                    partial.values.update(repeating: sentinel, count: d)
                    let loss = model.partialGradient(params: x, batch: batch, block: block, into: partial, workspace: ws)
                    #expect(loss == fullLoss)
                    var wrongInside = 0, writtenOutside = 0
                    for i in 0..<d {
                        if block.contains(i) {
                            if abs(partial.values[i] - full.values[i]) > 1e-5 * (1 + abs(full.values[i])) { wrongInside += 1 }
                        } else if partial.values[i] != sentinel {
                            writtenOutside += 1
                        }
                    }
                    #expect(wrongInside == 0 && writtenOutside == 0, "W=\(w) block \(k) \(block): \(wrongInside) wrong, \(writtenOutside) written outside")
                }
            }
        }
    }

    /// One partial step on the parameters changes the block and nothing else, by the full step's
    /// rule restricted to the block: Nesterov with a private velocity, and heavy ball with the
    /// velocity folded into the gradient buffer (whose entries outside the block must survive).
    @Test(arguments: [false, true]) func partialStepTouchesOnlyItsBlock(fused: Bool) throws {
        try withProblem { model, x, batch in
            let d = model.parameterCount
            let ws = model.makeWorkspace(batchCapacity: batch.count)
            let full = model.makeGradientBuffer()
            model.gradient(params: x, batch: batch, into: full, workspace: ws)
            let rule = SGDRule(momentum: 0.9, nesterov: !fused, weightDecay: 1e-3)
            let lr: Float = 0.5
            var rng = SeededGenerator(seed: 5)
            let v0 = (0..<d).map { _ in rng.nextUnitFloat() - 0.5 }
            let before = Array(UnsafeBufferPointer(start: x, count: d))
            for (k, block) in model.partition(into: 3).enumerated() {
                let params = UnsafeMutablePointer<Float>.allocate(capacity: d)
                let velocity = UnsafeMutablePointer<Float>.allocate(capacity: d)
                defer {
                    params.deallocate()
                    velocity.deallocate()
                }
                params.initialize(from: before, count: d)
                velocity.initialize(from: v0, count: d)
                let grad = model.makeGradientBuffer()
                if fused {
                    grad.values.update(from: v0, count: d)
                    grad.accumulate = rule.momentum
                }
                model.partialGradient(params: params, batch: batch, block: block, into: grad, workspace: ws)
                rule.apply(rate: lr, gradient: grad, velocity: fused ? nil : velocity, fused: fused, to: params, block: block)
                var changedOutside = 0, wrongInside = 0, changedInside = 0
                for i in 0..<d {
                    guard block.contains(i) else {
                        if params[i] != before[i] { changedOutside += 1 }
                        if fused ? grad.values[i] != v0[i] : velocity[i] != v0[i] { changedOutside += 1 }
                        continue
                    }
                    let g = full.values[i] + rule.weightDecay * before[i]
                    let v = rule.momentum * v0[i] + g
                    let expected = before[i] - lr * (fused ? v : g + rule.momentum * v)
                    if abs(params[i] - expected) > 1e-5 * (1 + abs(expected)) { wrongInside += 1 }
                    if params[i] != before[i] { changedInside += 1 }
                }
                #expect(changedOutside == 0 && wrongInside == 0, "block \(k) \(block): \(changedOutside) changed outside, \(wrongInside) wrong inside")
                #expect(changedInside > block.count / 2, "block \(k): only \(changedInside) of \(block.count) moved")
            }
        }
    }
}

extension JobTests {
    @Suite struct LppSGDJobTests {
        /// Partial steps from the start, beside LAP-SGD's averager.
        @Test func lppSGDTrainsWithPartialStepsAndTheAverager() throws {
            let s = try train(
                ["--data", fashionMNIST, "--model", "mlp:784-64-10", "--algorithm", "lpp-sgd", "--workers", "2", "--replicas", "2",
                 "--epochs", "1", "--partition-after", "0", "--period", "4"], tag: "lpp")
            #expect(s.outcome == "completed" && s.replicas == 2 && s.averagingRounds > 0)
            #expect(s.knobs?["partition-after"] == 0 && s.knobs?["period"] == 4 && s.knobs?["averaging-warmup"] == 0.5)
            #expect((s.testAccuracy ?? 0) >= 0.78, "lpp-sgd mlp, 1 epoch: \(s.testAccuracy ?? 0)")
        }
    }
}
