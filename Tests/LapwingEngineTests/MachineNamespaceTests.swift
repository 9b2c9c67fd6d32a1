import Foundation
import LapwingTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif


/// Two "machines" as network namespaces joined by a veth pair, Open MPI over TCP between them
/// (issue #15): tools/mpi-netns-check.sh runs a job across them, then kills one side mid-job
/// and checks that the other ends with the reason and its model written, then cuts the link of
/// a job with a short --mpi-timeout and checks that both sides end on their own, each with the
/// timeout's reason and its model written.
extension JobTests {
    @Suite struct MachineNamespaceTests {
        @Test(.enabled(if: canMakeNetworkNamespaces(), "needs root, network namespaces (CAP_NET_ADMIN), iproute2 and Open MPI"))
        func jobAcrossTwoNamespacesAndALostMachine() throws {
            let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().path
            let r = try runProgram(repo + "/tools/mpi-netns-check.sh", [try TestSupport.binary("lapwing")], timeout: 300)
            #expect(r.status == 0, "mpi-netns-check.sh exited \(r.status):\n\(r.stdout)\n\(r.stderr)")
            let result = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
            let checks = try #require(result?["checks"] as? [String: Bool])
            #expect(checks.count == 11 && checks.values.allSatisfy { $0 }, "\(checks)")
            // The cut: each rank failed on its own with the timeout's reason and its model.
            let cut = try #require(result?["cut"] as? [String: Any])
            let ranks = try #require(cut["ranks"] as? [[String: Any]])
            #expect(ranks.count == 2)
            for (rank, r) in ranks.enumerated() {
                #expect(r["outcome"] as? String == "failed", "rank \(rank): \(r)")
                #expect((r["reason"] as? String)?.contains("within 8 s (--mpi-timeout)") == true, "rank \(rank): \(r)")
                #expect(r["modelWritten"] as? Bool == true, "rank \(rank): \(r)")
                let ended = try #require(r["endedSecondsAfterCut"] as? Double, "rank \(rank) did not end: \(r)")
                #expect(ended >= 7 && ended <= 38, "rank \(rank) ended \(ended) s after the cut")
            }
        }
    }
}
