import Foundation
import LapwingCore
import LapwingEngine
import LapwingJob
import LapwingTestSupport
import Testing

/// The parameters of the model a `train` run exported, tensor after tensor.
private func exportedParameters(_ out: String) throws -> [Float] {
    try SafeTensors.read(out + "/model.safetensors").tensors.flatMap(\.values)
}

/// ||a - b|| / ||b||.
private func relativeDistance(_ a: [Float], _ b: [Float]) -> Double {
    precondition(a.count == b.count)
    var d = 0.0, n = 0.0
    for i in a.indices {
        d += Double(a[i] - b[i]) * Double(a[i] - b[i])
        n += Double(b[i]) * Double(b[i])
    }
    return (d / max(n, 1e-30)).squareRoot()
}

/// Issue #9: minibatch with W workers at batch B is one worker at batch W*B.
extension JobTests {
@Suite struct MinibatchTests {
    /// Trains with minibatch and returns the summary and the exported parameters.
    private func run(_ model: String, workers: Int, batch: Int, extra: [String] = []) throws -> (JobSummary, [Float]) {
        var parameters: [Float] = []
        let s = try train(
            ["--data", heartScale, "--model", model, "--algorithm", "minibatch", "--workers", "\(workers)",
             "--batch", "\(batch)", "--epochs", "8", "--lr", "0.05", "--seed", "7", "--eval-every", "0"] + extra,
            tag: "mb-\(workers)x\(batch)"
        ) { out in parameters = try exportedParameters(out) }
        #expect(s.outcome == "completed" && s.replicas == 1)
        return (s, parameters)
    }

    /// W=2 at B=8 and W=4 at B=4 end where W=1 at B=16 does (same shared order of samples, same
    /// steps; only float rounding differs), on a sparse logistic model and an MLP (several
    /// slices), with heavy-ball and Nesterov momentum; W=1 at B=8 does not (the comparison sees
    /// a different rule).
    @Test(arguments: [("logistic", ["--no-nesterov"]), ("mlp:13-32-2", ["--nesterov"])])
    func workersAtBatchBEqualOneWorkerAtBatchWB(model: String, extra: [String]) throws {
        let (one, reference) = try run(model, workers: 1, batch: 16, extra: extra)
        let (two, parameters2) = try run(model, workers: 2, batch: 8, extra: extra)
        let (four, parameters4) = try run(model, workers: 4, batch: 4, extra: extra)
        let (_, other) = try run(model, workers: 1, batch: 8, extra: extra)
        #expect(one.samples == two.samples && two.samples == four.samples)
        #expect(one.averagingRounds == two.averagingRounds && two.averagingRounds == four.averagingRounds)
        #expect(one.averagingRounds == one.samples / 16)
        #expect(relativeDistance(parameters2, reference) <= 1e-4, "\(model) W=2 B=8: \(relativeDistance(parameters2, reference))")
        #expect(relativeDistance(parameters4, reference) <= 1e-4, "\(model) W=4 B=4: \(relativeDistance(parameters4, reference))")
        #expect(relativeDistance(other, reference) >= 1e-2, "\(model) W=1 B=8 too close: \(relativeDistance(other, reference))")
        // Bytes a step: each worker writes its d floats and reads W vectors over its slice, and
        // reads and writes its slice of the replica: 4d(2W + 2) for all of them together.
        let d = reference.count
        for s in [one, two, four] {
            #expect(s.bytesExchanged == s.averagingRounds * 4 * d * (2 * s.workers + 2), "\(s.workers) workers")
            #expect(s.crossNodeBytes == 0)
        }
    }

    @Test func minibatchRefusesReplicas() throws {
        let spec = JobSpec(
            data: "idx:/d", model: "softmax", algorithm: AlgorithmConfig(name: "minibatch"), workers: 2, replicas: 2, id: "m")
        #expect(throws: LapwingError.self) { try Algorithms.check(spec) }
    }
}
}
