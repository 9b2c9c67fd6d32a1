import Foundation
import Testing

/// `lapwing-numa bench` on this machine with tiny sizes: every figure is there, positive, and
/// measured on memory the kernel reports on the node it was bound to.
@Suite struct Bench {
    @Test func tinyRunReportsEveryFigure() throws {
        let r = try run(
            lapwingNumaBinary(), ["bench", "--seconds", "0.5", "--size-mib", "1", "--parameters", "4096", "--json"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let nodes = try #require(report["nodes"] as? [[String: Any]])
        let memory = try #require(report["memory"] as? [[String: Any]])
        #expect(!nodes.isEmpty)
        #expect(memory.count >= 1)
        for pair in memory {
            for key in ["readGBps", "writeGBps", "latencyNanoseconds"] {
                #expect((pair[key] as? Double ?? 0) > 0, "\(key) in \(pair)")
            }
            #expect(pair["pagesOnNode"] as? Double == 1, "pages not on their node: \(pair)")
            #expect(pair["cpuNode"] is Int && pair["memoryNode"] is Int && pair["cpu"] is Int && pair["local"] is Bool)
        }
        let sharing = try #require(report["sharing"] as? [[String: Any]])
        let skipped = try #require(report["skipped"] as? [String])
        #expect(sharing.count + skipped.count >= 1)
        for s in sharing {
            for key in ["contendedAddsMops", "nanosecondsPerAdd", "lineRoundTripNanoseconds"] {
                #expect((s[key] as? Double ?? 0) > 0, "\(key) in \(s)")
            }
            #expect(s["pagesOnNode"] as? Double == 1)
        }
        let averaging = try #require(report["averaging"] as? [[String: Any]])
        #expect(averaging.map { $0["parameters"] as? Int } == [203_530, 4096])
        for a in averaging {
            #expect((a["averagingGBps"] as? Double ?? 0) > 0 && (a["memcpyGBps"] as? Double ?? 0) > 0, "\(a)")
            #expect((a["replicaNodes"] as? [Int])?.count ?? 0 >= 2)
            #expect(a["pagesOnNodes"] as? Double == 1)
        }
        let gemm = try #require(report["gemm"] as? [[String: Any]])
        #expect(gemm.count == 2 * nodes.filter { !(($0["cpus"] as? [Int]) ?? []).isEmpty }.count)
        for g in gemm { #expect((g["gflops"] as? Double ?? 0) > 0, "\(g)") }
        let blas = try #require(report["blas"] as? [String: Any])
        #expect(!(blas["corename"] as? String ?? "").isEmpty)
        // One node has no remote pair; several nodes have the ratios.
        #expect((report["remoteOverLocal"] != nil) == (memory.contains { $0["local"] as? Bool == false }))
    }

    @Test func refusesABufferOfNoSize() throws {
        let r = try run(lapwingNumaBinary(), ["bench", "--size-mib", "0"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("--size-mib must be in 1...65536 (got 0)"), "stderr: \(r.stderr)")
    }
}
