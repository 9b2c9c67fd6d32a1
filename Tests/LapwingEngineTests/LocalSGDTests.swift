import Foundation
import LapwingCore
import LapwingJob
import Testing

@testable import LapwingEngine

/// A trained job's summary and its exported parameters, every tensor in name order, flattened.
func trainParameters(_ arguments: [String], tag: String) throws -> (summary: JobSummary, parameters: [Float]) {
    var parameters: [Float] = []
    let summary = try train(arguments, tag: tag) { out in
        parameters = try SafeTensors.read(out + "/model.safetensors").tensors.flatMap(\.values)
    }
    #expect(summary.outcome == "completed", "\(tag): \(summary.reason ?? "")")
    return (summary, parameters)
}

/// The largest difference between two parameter vectors, relative to the largest magnitude
/// (at least 1).
func relativeDifference(_ a: [Float], _ b: [Float]) -> Float {
    guard a.count == b.count, !a.isEmpty else { return .infinity }
    var diff: Float = 0, scale: Float = 1
    for i in a.indices {
        diff = max(diff, abs(a[i] - b[i]))
        scale = max(scale, abs(a[i]), abs(b[i]))
    }
    return diff / scale
}

/// Float tolerance of the equalities that hold only up to rounding (sums in another order; about
/// 2e-7 measured on heartJob), and the gap a genuinely different rule must leave (the negative
/// controls: local SGD K = 4 vs K = 1 leaves 1.2e-3, SlowMo beta = 0.5 vs local SGD 0.3). The
/// jobs are deterministic (one shared order, sums in a fixed order), so load cannot move them.
let roundingTolerance: Float = 1e-5
let differentRuleGap: Float = 1e-4

/// heart_scale logistic regression, 216 training rows: 5 epochs at W*B = 16 are 68 steps.
let heartJob = ["--data", heartScale, "--model", "logistic", "--epochs", "5", "--lr", "0.1", "--eval-every", "0"]

/// Rounds of `--period K` over `steps` steps: one every K steps and one at the last.
func periodicRounds(steps: Int, period: Int) -> Int { (steps + period - 1) / period }

extension JobTests {
@Suite struct LocalSGDTests {
    func message(_ body: () throws -> Void) -> String {
        do {
            try body()
            return "accepted"
        } catch {
            return "\(error)"
        }
    }

    @Test func replicasAreOnePerWorkerAndKnobsAreChecked() throws {
        var spec = JobSpec(
            data: "idx:/d", model: "softmax", algorithm: AlgorithmConfig(name: "local-sgd"), workers: 3, replicas: 1, id: "a")
        #expect(message { try Algorithms.check(spec) }.contains("--replicas 1: local-sgd keeps one replica per worker (3 workers)"))
        spec.replicas = 3
        #expect(message { try Algorithms.check(spec) } == "accepted")
        #expect(try Algorithms.resolve(spec).replicaCount(numaNodes: 1) == 3)
        #expect(message { _ = try Algorithms.parseOptions(["--period", "0"], for: "local-sgd") }
            .contains("--period 0: local-sgd needs a whole number from 1 to 1000000"))
        #expect(message { _ = try Algorithms.parseOptions(["--post-local-after", "1.5"], for: "local-sgd") }
            .contains("--post-local-after 1.5: local-sgd needs a number from 0 to 1"))
        let knobs = try Algorithms.parseOptions([], for: "local-sgd")
        #expect(try Knobs(knobs, declared: LocalSGD.knobs).values == ["period": 16, "post-local-after": 0])
    }

    /// K = 1 without momentum: averaging the parameters after one step from the same point is
    /// averaging the gradients, so 2 workers at batch 8 are 1 worker at batch 16 (the same rows
    /// of the shared order, the same rate per step), up to rounding. Every step is a round, and
    /// each round moves 2 * (W-1) * d floats over all workers. K = 4 is a different rule.
    @Test func periodOneWithoutMomentumIsMinibatchSGD() throws {
        let common = heartJob + ["--algorithm", "local-sgd", "--momentum", "0"]
        let two = try trainParameters(common + ["--workers", "2", "--batch", "8", "--period", "1"], tag: "lsgd-k1-w2")
        let one = try trainParameters(common + ["--workers", "1", "--batch", "16", "--period", "1"], tag: "lsgd-k1-w1")
        let d = two.parameters.count
        #expect(d == 14 && one.parameters.count == d)
        let gap = relativeDifference(two.parameters, one.parameters)
        #expect(gap <= roundingTolerance, "local-sgd K=1, 2 workers at B=8 vs 1 worker at B=16: \(gap)")
        #expect(two.summary.replicas == 2 && one.summary.replicas == 1)
        #expect(two.summary.averagingRounds == 68, "rounds: \(two.summary.averagingRounds)")
        #expect(two.summary.bytesExchanged == 68 * 2 * 1 * d * 4, "bytes: \(two.summary.bytesExchanged)")
        #expect(one.summary.bytesExchanged == 0)

        let k4 = try trainParameters(common + ["--workers", "2", "--batch", "8", "--period", "4"], tag: "lsgd-k4-w2")
        #expect(relativeDifference(k4.parameters, one.parameters) >= differentRuleGap)
        #expect(k4.summary.averagingRounds == periodicRounds(steps: 68, period: 4))
        #expect(k4.summary.bytesExchanged == periodicRounds(steps: 68, period: 4) * 2 * d * 4)
    }

    /// With K = 1 every worker starts each step from the same point, so private momentum
    /// (heavy ball or Nesterov) is linear in the gradients and averages to the momentum of the
    /// averaged gradient: still 1 worker at W*B, up to rounding (3e-7 measured).
    @Test func periodOneWithPrivateMomentumIsStillMinibatchSGD() throws {
        for nesterov in [false, true] {
            let common = heartJob + ["--algorithm", "local-sgd", "--period", "1", "--momentum", "0.9"] + (nesterov ? ["--nesterov"] : ["--no-nesterov"])
            let two = try trainParameters(common + ["--workers", "2", "--batch", "8"], tag: "lsgd-mom-w2")
            let one = try trainParameters(common + ["--workers", "1", "--batch", "16"], tag: "lsgd-mom-w1")
            let gap = relativeDifference(two.parameters, one.parameters)
            #expect(gap <= roundingTolerance, "nesterov \(nesterov): \(gap)")
        }
    }

    /// Post-local SGD's warm-up over all of training is K = 1, whatever --period says (the same
    /// arithmetic: bitwise equal), and private momentum does not get in the way.
    @Test func postLocalWarmupAveragesEveryStep() throws {
        let common = heartJob + ["--algorithm", "local-sgd", "--workers", "2", "--batch", "8"]
        let warm = try trainParameters(common + ["--period", "8", "--post-local-after", "1"], tag: "lsgd-warm")
        let k1 = try trainParameters(common + ["--period", "1"], tag: "lsgd-warm-k1")
        #expect(warm.parameters == k1.parameters)
        #expect(warm.summary.averagingRounds == 68)
        // Half of training at K = 1 (34 steps), then every 8 steps: 34 + ceil(34 / 8) rounds.
        let half = try trainParameters(common + ["--period", "8", "--post-local-after", "0.5"], tag: "lsgd-warm-half")
        #expect(half.summary.averagingRounds == 34 + 5, "rounds: \(half.summary.averagingRounds)")
    }
}
}
