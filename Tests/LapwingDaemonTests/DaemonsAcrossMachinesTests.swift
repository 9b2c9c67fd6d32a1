import Foundation
import LapwingTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif


/// Two "machines" as network namespaces joined by a veth pair, each with its own user-mode daemon
/// (issue #15, the daemons' path): tools/daemons-netns-check.sh submits one job across them from
/// the root namespace with `lapwing submit --hosts`, through an rsh agent that enters each
/// namespace, and checks both ranks' records: succeeded, two machines met at rank 0's
/// ompi-server, a machine round per average and the last, the model's bytes per round, the
/// accuracy, each daemon's model, nothing left running; then B's daemon, told AcrossMachines =
/// no, refuses rank 1 of a second job and its rank 0, already started on A, is cancelled; then A's
/// refuses rank 0 of a third, B's daemon never asked.
extension DaemonTests {
    @Suite struct DaemonsAcrossMachines {
        @Test(.enabled(if: canMakeNetworkNamespaces(), "needs root, network namespaces (CAP_NET_ADMIN), iproute2 and Open MPI"))
        func jobAcrossTwoNamespacesThroughTheirDaemons() throws {
            let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().path
            let r = try runProgram(
                repo + "/tools/daemons-netns-check.sh", [try TestSupport.binary("lapwing"), try TestSupport.binary("lapwingd")],
                timeout: 600)
            #expect(r.status == 0, "daemons-netns-check.sh exited \(r.status):\n\(r.stdout)\n\(r.stderr)")
            let result = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            let checks = try #require(result?["checks"] as? [String: Bool], "\(r.stdout)\n\(r.stderr)")
            #expect(checks.count == 12 && checks.values.allSatisfy { $0 }, "\(checks)")
            // Each rank, as its own daemon's record says.
            let ranks = try #require(result?["ranks"] as? [[String: Any]])
            #expect(ranks.count == 2)
            for (rank, r) in ranks.enumerated() {
                #expect(r["state"] as? String == "succeeded", "rank \(rank): \(r)")
                #expect(r["machines"] as? Int == 2 && r["machineRank"] as? Int == rank, "rank \(rank): \(r)")
            }
            let rounds = try #require(ranks[0]["machineRounds"] as? Int)
            #expect(rounds >= 2 && rounds == (ranks[0]["averagingRounds"] as? Int).map { $0 + 1 }, "\(ranks[0])")
            #expect(ranks[0]["machineBytes"] as? Int == rounds * 203_530 * 4, "\(ranks[0])")
            #expect((ranks[0]["testAccuracy"] as? Double ?? 0) >= 0.82, "\(ranks[0])")
            // A later rank refused: the ranks already queued are cancelled.
            let byB = try #require(result?["refusedByB"] as? [String: Any])
            #expect((byB["stderr"] as? String)?.contains("AcrossMachines = no") == true, "\(byB)")
            #expect((byB["rank0OnA"] as? [String: Any])?["state"] as? String == "cancelled", "\(byB)")
            let byA = try #require(result?["refusedByA"] as? [String: Any])
            #expect(byA["jobsOnB"] as? Int == 1, "\(byA)")
        }
    }
}
