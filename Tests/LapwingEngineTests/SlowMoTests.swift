import Foundation
import LapwingCore
import LapwingJob
import Testing

@testable import LapwingEngine

extension JobTests {
@Suite struct SlowMoTests {
    /// alpha = 1, beta = 0: x0 = x0 - lr (x0 - a) / lr = a, local SGD with K = tau (up to rounding).
    /// With beta = 0.5 the slow momentum makes it a different rule.
    @Test func alphaOneBetaZeroIsLocalSGD() throws {
        let common = heartJob + ["--workers", "2", "--batch", "8", "--period", "5"]
        let slow = try trainParameters(
            common + ["--algorithm", "slowmo", "--slow-lr", "1", "--slow-momentum", "0"], tag: "slowmo-a1b0")
        let local = try trainParameters(common + ["--algorithm", "local-sgd"], tag: "slowmo-local")
        let gap = relativeDifference(slow.parameters, local.parameters)
        #expect(gap <= roundingTolerance, "slowmo alpha=1 beta=0 vs local-sgd K=5: \(gap)")
        #expect(slow.summary.averagingRounds == periodicRounds(steps: 68, period: 5))
        #expect(slow.summary.bytesExchanged == local.summary.bytesExchanged)
        let momentum = try trainParameters(common + ["--algorithm", "slowmo"], tag: "slowmo-b05")
        #expect(relativeDifference(momentum.parameters, local.parameters) >= differentRuleGap)
    }

    /// The outer step on a slice, by hand: two rounds with alpha = 2, beta = 0.5, lr = 0.1.
    @Test func outerStepFollowsThePaper() {
        let n = 19  // a SIMD part and a scalar tail
        let a = UnsafeMutablePointer<Float>.allocate(capacity: n), b = UnsafeMutablePointer<Float>.allocate(capacity: n)
        let x0 = UnsafeMutablePointer<Float>.allocate(capacity: n), u = UnsafeMutablePointer<Float>.allocate(capacity: n)
        defer { [a, b, x0, u].forEach { $0.deallocate() } }
        for i in 0..<n {
            x0[i] = Float(i)
            u[i] = 0
        }
        var expectX = (0..<n).map { Float($0) }, expectU = [Float](repeating: 0, count: n)
        for round in 0..<2 {
            for i in 0..<n {
                a[i] = x0[i] - 0.3 - Float(round)
                b[i] = x0[i] + 0.1
                let mean = (a[i] + b[i]) / 2
                expectU[i] = 0.5 * expectU[i] + (expectX[i] - mean) / 0.1
                expectX[i] -= 2 * 0.1 * expectU[i]
            }
            SlowMoStep.outerStep([a, b], slow: x0, momentum: u, range: 0..<n, lr: 0.1, alpha: 2, beta: 0.5)
            for i in 0..<n {
                #expect(abs(u[i] - expectU[i]) <= 1e-3 * max(1, abs(expectU[i])), "u[\(i)] round \(round)")
                #expect(abs(x0[i] - expectX[i]) <= 1e-4 * max(1, abs(expectX[i])), "x0[\(i)] round \(round)")
                #expect(a[i] == x0[i] && b[i] == x0[i])
            }
        }
        // A rate of 0 has no pseudo-gradient scale: x0 = a, u kept.
        let before = (0..<n).map { u[$0] }
        SlowMoStep.outerStep([a, b], slow: x0, momentum: u, range: 0..<n, lr: 0, alpha: 2, beta: 0.5)
        #expect((0..<n).allSatisfy { u[$0] == before[$0] && a[$0] == x0[$0] })
    }

    @Test func knobsAndReplicas() throws {
        let spec = JobSpec(
            data: "idx:/d", model: "softmax", algorithm: AlgorithmConfig(name: "slowmo"), workers: 2, replicas: 1, id: "a")
        #expect(throws: LapwingError.self) { try Algorithms.check(spec) }
        let knobs = try Algorithms.parseOptions([], for: "slowmo")
        #expect(try Knobs(knobs, declared: SlowMo.knobs).values == ["period": 12, "slow-lr": 1, "slow-momentum": 0.5])
        #expect(throws: LapwingError.self) { _ = try Algorithms.parseOptions(["--slow-momentum", "1"], for: "slowmo") }
    }
}
}
