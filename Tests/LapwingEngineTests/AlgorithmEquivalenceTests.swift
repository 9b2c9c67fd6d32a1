import Foundation
import LapwingJob
import Testing

/// Issue #9's rules pinned across algorithms written in different files: local SGD with K = 1
/// and no momentum is minibatch SGD, model for model (the same shared order of samples, the same
/// rate per step; sums in another order, so up to rounding). With K = 4 it is not.
extension JobTests {
@Suite struct AlgorithmEquivalenceTests {
    @Test func localSGDWithPeriodOneAndNoMomentumIsMinibatch() throws {
        let common = heartJob + ["--momentum", "0", "--workers", "2", "--batch", "8"]
        let minibatch = try trainParameters(common + ["--algorithm", "minibatch"], tag: "eq-minibatch")
        let local = try trainParameters(common + ["--algorithm", "local-sgd", "--period", "1"], tag: "eq-local-k1")
        #expect(minibatch.summary.samples == local.summary.samples)
        let gap = relativeDifference(minibatch.parameters, local.parameters)
        #expect(gap <= roundingTolerance, "minibatch vs local-sgd K=1: \(gap)")
        let k4 = try trainParameters(common + ["--algorithm", "local-sgd", "--period", "4"], tag: "eq-local-k4")
        #expect(relativeDifference(minibatch.parameters, k4.parameters) >= differentRuleGap)
    }
}
}
