import Foundation
import LapwingJob
import LapwingCore
import LapwingData
import LapwingModels
import Testing

@testable import LapwingEngine

@Suite struct LearningRateScheduleTests {
    @Test func warmupIsLinearThenEachScheduleHasItsShape() {
        let constant = LearningRateSchedule(kind: .constant, base: 0.1, warmup: 0.1)
        #expect(constant.rate(at: 0) == 0)
        #expect(abs(constant.rate(at: 0.05) - 0.05) < 1e-6)
        #expect(constant.rate(at: 0.5) == 0.1 && constant.rate(at: 1) == 0.1)

        let step = LearningRateSchedule(kind: .step, base: 1, stepAt: [0.5, 0.75], stepFactor: 0.1)
        #expect(step.rate(at: 0.49) == 1)
        #expect(abs(step.rate(at: 0.5) - 0.1) < 1e-6)
        #expect(abs(step.rate(at: 0.8) - 0.01) < 1e-7)

        let cosine = LearningRateSchedule(kind: .cosine, base: 1, warmup: 0, minimum: 0)
        #expect(cosine.rate(at: 0) == 1)
        #expect(abs(cosine.rate(at: 0.5) - 0.5) < 1e-6)
        #expect(abs(cosine.rate(at: 1)) < 1e-6)
        #expect(cosine.rate(at: 0.3) > cosine.rate(at: 0.6))

        let linear = LearningRateSchedule(kind: .linear, base: 2)
        #expect(linear.rate(at: 0) == 2 && abs(linear.rate(at: 0.25) - 1.5) < 1e-6 && linear.rate(at: 1) == 0)
    }

    @Test func refusesNonsense() {
        #expect(throws: LapwingError.self) { try LearningRateSchedule(base: -1).validate() }
        #expect(throws: LapwingError.self) { try LearningRateSchedule(base: 0.1, warmup: 1.5).validate() }
    }
}

@Suite struct SGDRuleTests {
    @Test func heavyBallAndNesterovMatchTheTextbook() {
        let grad = GradientBuffer(count: 3, sparseEnd: 0, blockSize: 1)
        for (i, v) in [1, -2, 0.5].enumerated() { grad.values[i] = Float(v) }
        for nesterov in [false, true] {
            let rule = SGDRule(momentum: 0.9, nesterov: nesterov, weightDecay: 0.01)
            var x: [Float] = [1, 1, 1]
            var v: [Float] = [0.5, 0, -0.5]
            var expected = x
            for i in 0..<3 {
                let g = grad.values[i] + 0.01 * x[i]
                let vi = 0.9 * v[i] + g
                expected[i] = x[i] - 0.1 * (nesterov ? g + 0.9 * vi : vi)
            }
            v.withUnsafeMutableBufferPointer { vp in
                x.withUnsafeMutableBufferPointer { xp in
                    rule.apply(rate: 0.1, gradient: grad, velocity: vp.baseAddress, to: xp.baseAddress!)
                }
            }
            for i in 0..<3 { #expect(abs(x[i] - expected[i]) < 1e-6) }
        }
    }
}

@Suite struct SafeTensorsTests {
    @Test func roundTripsThroughTheFileFormat() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lw-st-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("m.safetensors").path
        let tensors = [
            SafeTensors.Tensor(name: "layers.0.weight", shape: [3, 2], values: [1, 2, 3, 4, 5, 6]),
            SafeTensors.Tensor(name: "layers.0.bias", shape: [2], values: [-1, 0.5]),
        ]
        try SafeTensors.write(tensors, metadata: ["model": "mlp:3-2"], to: path)
        let bytes = [UInt8](FileManager.default.contents(atPath: path)!)
        var n = 0
        for i in 0..<8 { n |= Int(bytes[i]) << (8 * i) }
        #expect(n % 8 == 0 && bytes.count == 8 + n + 4 * 8)
        let (back, meta) = try SafeTensors.read(path)
        #expect(back == tensors.sorted { $0.name < $1.name })
        #expect(meta == ["model": "mlp:3-2"])
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp.\(getpid())"))
    }
}

@Suite struct FusedMomentumTests {
    /// Heavy-ball momentum folded into the GEMMs (the gradient buffer is the velocity) gives the
    /// same parameters as the plain gradient-then-update path, with and without weight decay.
    @Test(arguments: [Float(0), 0.01])
    func foldedMomentumEqualsThePlainUpdate(weightDecay: Float) throws {
        try BLAS.setUp()
        let model = try FeedForwardModel(spec: .parse("mlp:7-5-3"), features: 7, classes: 3)
        let rule = SGDRule(momentum: 0.9, weightDecay: weightDecay)
        var rng = SeededGenerator(seed: 4)
        var batches: [BatchBuffer] = []
        for _ in 0..<4 {
            var b = BatchBuffer(cols: 7, sparse: false, capacity: 5)
            for _ in 0..<5 {
                let row = (0..<7).map { _ in rng.nextUnitFloat() * 2 - 1 }
                row.withUnsafeBufferPointer { b.append(dense: $0, label: Float(rng.nextIndex(3))) }
            }
            batches.append(b)
        }
        var plain = [Float](repeating: 0, count: model.parameterCount)
        plain.withUnsafeMutableBufferPointer { model.initialize($0, seed: 1) }
        var folded = plain
        var velocity = [Float](repeating: 0, count: model.parameterCount)
        let ws = model.makeWorkspace(batchCapacity: 5)
        let g1 = model.makeGradientBuffer(), g2 = model.makeGradientBuffer()
        g2.accumulate = rule.momentum
        #expect(rule.canFuse(sparse: false) && !rule.canFuse(sparse: true))
        for b in batches {
            plain.withUnsafeMutableBufferPointer { x in
                velocity.withUnsafeMutableBufferPointer { v in
                    _ = b.withBatch { model.gradient(params: x.baseAddress!, batch: $0, into: g1, workspace: ws) }
                    rule.apply(rate: 0.1, gradient: g1, velocity: v.baseAddress, to: x.baseAddress!)
                }
            }
            folded.withUnsafeMutableBufferPointer { x in
                _ = b.withBatch { model.gradient(params: x.baseAddress!, batch: $0, into: g2, workspace: ws) }
                rule.applyFused(rate: 0.1, velocity: g2, to: x.baseAddress!)
            }
        }
        for k in 0..<model.parameterCount { #expect(abs(plain[k] - folded[k]) < 1e-5, "parameter \(k)") }
    }
}
