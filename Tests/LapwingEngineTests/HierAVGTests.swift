import Foundation
import LapwingCore
import LapwingJob
import Testing

@testable import LapwingEngine

extension JobTests {
@Suite struct HierAVGTests {
    /// With K2 = 1 every average is global: local SGD with K = K1, the same arithmetic (bitwise).
    @Test func globalPeriodOneIsLocalSGD() throws {
        let common = heartJob + ["--workers", "2", "--batch", "8", "--period", "3"]
        let hier = try trainParameters(common + ["--algorithm", "hier-avg", "--global-period", "1", "--groups", "1"], tag: "hier-k2-1")
        let local = try trainParameters(common + ["--algorithm", "local-sgd"], tag: "hier-k2-1-local")
        #expect(hier.parameters == local.parameters, "gap \(relativeDifference(hier.parameters, local.parameters))")
        #expect(hier.summary.averagingRounds == local.summary.averagingRounds)
        #expect(hier.summary.bytesExchanged == local.summary.bytesExchanged)
    }

    /// Groups of one worker have nothing to average: only the global rounds, every K1*K2 steps,
    /// remain, which is local SGD with K = K1*K2 (bitwise); no bytes move in group rounds.
    @Test func singletonGroupsAreLocalSGDAtK1TimesK2() throws {
        let common = heartJob + ["--workers", "2", "--batch", "8"]
        let hier = try trainParameters(
            common + ["--algorithm", "hier-avg", "--groups", "2", "--period", "2", "--global-period", "3"], tag: "hier-single")
        let local = try trainParameters(common + ["--algorithm", "local-sgd", "--period", "6"], tag: "hier-single-local")
        #expect(hier.parameters == local.parameters, "gap \(relativeDifference(hier.parameters, local.parameters))")
        #expect(hier.summary.bytesExchanged == local.summary.bytesExchanged)
    }

    /// 4 workers in 2 groups: a group round moves 2 * (2-1) * d floats per group, a global one
    /// 2 * (4-1) * d; every K2-th round and the last are global. The result differs from
    /// local SGD with K = K1 (group rounds leave the groups apart).
    @Test func groupRoundsStayInTheirGroup() throws {
        let common = heartJob + ["--workers", "4", "--batch", "4"]
        let hier = try trainParameters(
            common + ["--algorithm", "hier-avg", "--groups", "2", "--period", "2", "--global-period", "3"], tag: "hier-groups")
        let local = try trainParameters(common + ["--algorithm", "local-sgd", "--period", "2"], tag: "hier-groups-local")
        let d = hier.parameters.count
        // 68 steps of 16 rows; a round every 2 steps (34), rounds 3, 6, ... and the last global.
        let rounds = 34
        let global = (1...rounds).filter { $0 % 3 == 0 || $0 == rounds }.count
        let group = rounds - global
        #expect(hier.summary.averagingRounds == rounds)
        #expect(hier.summary.bytesExchanged == (group * 2 * 2 + global * 2 * 3) * d * 4, "bytes \(hier.summary.bytesExchanged)")
        #expect(relativeDifference(hier.parameters, local.parameters) > 0)
    }

    @Test func groupsAreNodesOrContiguousRuns() throws {
        var spec = JobSpec(
            data: "idx:/d", model: "softmax", algorithm: AlgorithmConfig(name: "hier-avg", knobs: ["groups": 2]), workers: 5,
            id: "a")
        let runs = try #require(try Algorithms.resolve(spec) as? HierAVG)
        #expect(runs.groups(replicaWorkers: (0..<5).map { [$0] }, replicaNodes: [0, 0, 0, 1, 1]) == [[0, 1, 2], [3, 4]])
        spec.algorithm = AlgorithmConfig(name: "hier-avg")
        let nodes = try #require(try Algorithms.resolve(spec) as? HierAVG)
        #expect(nodes.groups(replicaWorkers: (0..<5).map { [$0] }, replicaNodes: [0, 0, 1, 1, 1]) == [[0, 1], [2, 3, 4]])
        spec.algorithm = AlgorithmConfig(name: "hier-avg", knobs: ["groups": 6])
        #expect(throws: LapwingError.self) { try Algorithms.check(spec) }
    }
}
}
