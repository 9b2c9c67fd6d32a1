import Foundation
import LapwingCore
import LapwingJob
import Testing

@testable import LapwingEngine

/// overlap-local's rules on plain vectors (no job).
@Suite struct OverlapLocalRuleTests {
    /// The coordinator's one momentum buffer gives the anchor that the reference's all-reduce of
    /// per-worker buffers gives (distoptim/OverlapLocalSGD.py, `average`), round after round,
    /// with the learning rate changing between rounds.
    @Test func anchorRoundIsTheReferencesAllReduceOfPerWorkerBuffers() {
        let (workers, d, beta) = (3, 37, 0.7)
        var rng = SeededGenerator(seed: 21)
        let x0 = (0..<d).map { _ in Double(rng.nextUnitFloat() - 0.5) }
        // The reference, in doubles: every worker's global momentum buffer, then the mean.
        var z = x0
        var buffers: [[Double]?] = Array(repeating: nil, count: workers)
        // Lapwing's: anchors per replica, one momentum buffer.
        let anchors = (0..<workers).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: d) }
        let snapshots = (0..<workers).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: d) }
        let u = UnsafeMutablePointer<Float>.allocate(capacity: d)
        defer { for p in anchors + snapshots + [u] { p.deallocate() } }
        for a in anchors { a.initialize(from: x0.map { Float($0) }, count: d) }
        u.initialize(repeating: 0, count: d)
        for (round, lr) in [0.1, 0.1, 0.05, 0.02, 0.02, 0.01].enumerated() {
            var next = [Double](repeating: 0, count: d)
            for w in 0..<workers {
                // The replica as pulled at this round: near the anchor.
                let x = (0..<d).map { Float(z[$0] + Double(rng.nextUnitFloat() - 0.5) * 0.1) }
                snapshots[w].update(from: x, count: d)
                var b = buffers[w] ?? (0..<d).map { (Double(x[$0]) - z[$0]) / -lr }
                if buffers[w] != nil { for i in 0..<d { b[i] = b[i] * beta - Double(x[i]) / lr + z[i] / lr } }
                buffers[w] = b
                for i in 0..<d { next[i] += (z[i] - lr * b[i]) / Double(workers) }
            }
            z = next
            AnchorAverager.nextAnchor(
                anchors: anchors, momentum: u, snapshots: snapshots.map { UnsafePointer($0) }, count: d, lr: Float(lr),
                beta: Float(beta))
            for a in anchors {
                let worst = (0..<d).map { abs(Double(a[$0]) - z[$0]) / (1 + abs(z[$0])) }.max()!
                #expect(worst < 1e-4, "round \(round): anchor off by \(worst)")
            }
        }
    }

    /// x = (1 - alpha) x + alpha z into x and the snapshot; alpha = 0 keeps x exactly.
    @Test func pullMovesTheReplicaTowardTheAnchorByAlpha() {
        let d = 29
        var rng = SeededGenerator(seed: 4)
        let x0 = (0..<d).map { _ in rng.nextUnitFloat() - 0.5 }
        let z = (0..<d).map { _ in 100 * (rng.nextUnitFloat() - 0.5) }
        let x = UnsafeMutablePointer<Float>.allocate(capacity: d)
        let s = UnsafeMutablePointer<Float>.allocate(capacity: d)
        defer {
            x.deallocate()
            s.deallocate()
        }
        for alpha: Float in [0, 0.6, 1] {
            x.initialize(from: x0, count: d)
            s.initialize(repeating: .nan, count: d)
            OverlapStep.pull(x, toward: z, snapshot: s, alpha: alpha, count: d)
            for i in 0..<d {
                let expected = alpha == 0 ? x0[i] : (alpha == 1 ? z[i] : (1 - alpha) * x0[i] + alpha * z[i])
                #expect(abs(x[i] - expected) <= 1e-5 * (1 + abs(expected)) && s[i] == x[i], "alpha \(alpha) [\(i)]")
                if alpha == 0 { #expect(x[i] == x0[i]) }
            }
        }
    }

    @Test func optionsAndReplicas() throws {
        let config = try Algorithms.parseOptions(["--period", "4", "--pull", "0.5", "--anchor-momentum", "0"], for: "overlap-local")
        #expect(config.knobs == ["period": 4, "pull": 0.5, "anchor-momentum": 0])
        var spec = JobSpec(data: "idx:/d", model: "softmax", algorithm: AlgorithmConfig(name: "overlap-local"), workers: 3, id: "o")
        let a = try Algorithms.resolve(spec)
        #expect(try a.replicaCount(numaNodes: 1) == 3 && a.arenaNeeds(replicas: 3).vectorsPerReplica == 4)
        spec.replicas = 2
        #expect(throws: LapwingError.self) { try Algorithms.check(spec) }
    }
}

extension JobTests {
    @Suite struct OverlapLocalJobTests {
        func parameters(_ out: String) throws -> [SafeTensors.Tensor] { try SafeTensors.read(out + "/model.safetensors").0 }

        /// With alpha = 0 the anchor never moves a replica: one worker, same seed, the model is
        /// hogwild's with the same worker, bit for bit, although the anchor's coordinator ran
        /// rounds and the worker pulled; with alpha = 0.6 it is not. (One worker: which worker
        /// claims which samples does not depend on timing. The straggler delay, the same in
        /// every run, leaves the coordinator time for its rounds.)
        @Test func zeroPullNeverMovesAReplicaThroughTheAnchor() throws {
            let common = ["--data", heartScale, "--model", "logistic", "--workers", "1", "--epochs", "40", "--lr", "0.1",
                          "--straggler", "0:2"]
            var hogwild: [SafeTensors.Tensor] = [], still: [SafeTensors.Tensor] = [], pulled: [SafeTensors.Tensor] = []
            _ = try train(common + ["--algorithm", "hogwild"], tag: "ol-hog") { hogwild = try parameters($0) }
            let s = try train(common + ["--algorithm", "overlap-local", "--pull", "0"], tag: "ol-zero") { still = try parameters($0) }
            #expect(s.outcome == "completed" && s.replicas == 1 && s.averagingRounds > 0)
            let d = 14 * MemoryLayout<Float>.stride
            // The coordinator's rounds (a snapshot read and an anchor written each) and the pulls.
            let bytes: Int = s.bytesExchanged ?? -1
            let pulls: Int = bytes - s.averagingRounds * 2 * d
            #expect(pulls % d == 0 && pulls / d >= s.averagingRounds, "\(bytes) bytes, \(s.averagingRounds) rounds")
            #expect(!hogwild.isEmpty && still == hogwild, "alpha = 0 changed the model")
            _ = try train(common + ["--algorithm", "overlap-local"], tag: "ol-pull") { pulled = try parameters($0) }
            #expect(pulled != hogwild, "alpha = 0.6 left the model as hogwild's")
        }

        @Test func overlapLocalTrainsAndCountsItsBytes() throws {
            let s = try train(
                ["--data", fashionMNIST, "--model", "mlp:784-64-10", "--algorithm", "overlap-local", "--workers", "2", "--epochs", "1"],
                tag: "overlap")
            #expect(s.outcome == "completed" && s.replicas == 2 && s.averagingRounds > 0)
            #expect(s.knobs == ["period": 2, "pull": 0.6, "anchor-momentum": 0.7])
            let vector = (784 * 64 + 64 + 64 * 10 + 10) * MemoryLayout<Float>.stride
            // Per round the coordinator reads 2 snapshots and writes 2 anchors; each round needs
            // both workers' pulls, each a read of the anchor.
            let bytes: Int = s.bytesExchanged ?? -1
            let pulls: Int = bytes - s.averagingRounds * 4 * vector
            #expect(pulls % vector == 0 && pulls / vector >= 2 * s.averagingRounds, "\(bytes) bytes, \(s.averagingRounds) rounds")
            #expect((s.testAccuracy ?? 0) >= 0.78, "overlap-local mlp, 1 epoch: \(s.testAccuracy ?? 0)")
        }
    }
}
