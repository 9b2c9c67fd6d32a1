import Foundation
import LapwingCore
import Testing

@testable import LapwingTopology

let twoPackages = "pack:2 numa:2 core:8 pu:2"
let twoCores = "pack:1 numa:1 core:2 pu:1"

/// A path under the temporary directory that no other test uses.
func uniqueTempPath(_ suffix: String) -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("lapwing-topo-\(UUID().uuidString)\(suffix)").path
}

@Suite struct TopologyLoading {
    @Test func syntheticTwoPackages() throws {
        let t = try Topology.synthetic(twoPackages)
        #expect(t.source == "synthetic: \(twoPackages)")
        #expect(t.nodes.count == 4)
        #expect(t.packages.count == 2)
        #expect(t.cores.count == 32)
        #expect(t.cpus == Array(0..<64))
        #expect(t.nodes.map(\.osIndex) == [0, 1, 2, 3])
        #expect(t.nodes.allSatisfy { $0.cpus.count == 16 && $0.memoryBytes > 0 })
        #expect(t.cpusOfNode(2) == Array(32..<48))
        #expect(t.cpusOfNode(7) == [])
        for core in t.cores {
            #expect(core.cpus == [2 * core.index, 2 * core.index + 1])
            #expect(core.node == core.index / 8)
            #expect(core.package == core.index / 16)
        }
        #expect(t.packages.map(\.cpus) == [Array(0..<32), Array(32..<64)])
        #expect(t.distancesDefaulted)
        #expect(t.distances == (0..<4).map { i in (0..<4).map { j in i == j ? 10 : 20 } })
    }

    @Test func syntheticTwoCores() throws {
        let t = try Topology.synthetic(twoCores)
        #expect(t.nodes.count == 1)
        #expect(t.cores.map(\.cpus) == [[0], [1]])
        #expect(t.cpusOfNode(0) == [0, 1])
    }

    @Test func xmlRoundTrip() throws {
        let path = uniqueTempPath(".xml")
        defer { unlink(path) }
        try Topology.exportSyntheticXML(twoPackages, to: path)
        let loaded = try Topology.xml(path: path)
        #expect(loaded.source == "xml: \(path)")
        var original = try Topology.synthetic(twoPackages)
        original.source = loaded.source
        #expect(loaded == original)
    }

    /// An XML topology with hwloc distances (given out of order, as hwloc may store them) is read
    /// into `nodes` order, and placement sends replica-less nodes to the nearest replica.
    @Test func xmlWithDistances() throws {
        let path = uniqueTempPath("-distances.xml")
        defer { unlink(path) }
        try Topology.exportSyntheticXML("pack:2 numa:2 core:2 pu:1", to: path)
        // Rows for OS nodes 3, 2, 1, 0; node 1 is nearer to node 2 (other package) than to node 0.
        let indexes = "3 2 1 0 "
        let values = "10 12 20 20 12 10 15 20 20 15 10 30 20 20 30 10 "
        let element = """
              <distances2 type="NUMANode" nbobjs="4" kind="5" indexing="os">
                <indexes length="\(indexes.utf8.count)">\(indexes)</indexes>
                <u64values length="\(values.utf8.count)">\(values)</u64values>
              </distances2>

            """
        let xml = try String(contentsOfFile: path, encoding: .utf8)
        #expect(xml.contains("</topology>"))
        try xml.replacingOccurrences(of: "</topology>", with: element + "</topology>")
            .write(toFile: path, atomically: true, encoding: .utf8)
        let t = try Topology.xml(path: path)
        #expect(!t.distancesDefaulted)
        #expect(t.distances == [[10, 30, 20, 20], [30, 10, 15, 20], [20, 15, 10, 12], [20, 20, 12, 10]])
        let p = try t.place(workers: 4, replicas: 2)
        #expect(p.replicas.map(\.node) == [0, 2])
        #expect(p.replicas.map(\.workers) == [[0], [1, 2, 3]])
    }

    @Test func thisMachine() throws {
        let t = try Topology.current()
        #expect(t.source == "this machine")
        #expect(t.nodes.count >= 1)
        #expect(t.cores.count >= 1)
        let affinity = try currentAffinity()
        #expect(t.cpus.count == affinity.count)
        #expect(Set(t.cpus).isSubset(of: Set(affinity)))
        #expect(t.distances.count == t.nodes.count)
    }

    @Test func malformedSyntheticNamesTheString() {
        do {
            _ = try Topology.synthetic("pack:two core:x")
            Issue.record("a malformed synthetic description loaded")
        } catch {
            #expect(error.code == .invalidArgument)
            #expect(error.description.contains("pack:two core:x"))
        }
    }

    @Test func missingXMLNamesThePath() {
        let path = uniqueTempPath("-missing.xml")
        do {
            _ = try Topology.xml(path: path)
            Issue.record("a missing XML file loaded")
        } catch {
            #expect(error.code == .notFound)
            #expect(error.description.contains(path))
        }
    }

    @Test func garbageXMLNamesThePath() throws {
        let path = uniqueTempPath("-garbage.xml")
        defer { unlink(path) }
        try Data("not xml at all".utf8).write(to: URL(fileURLWithPath: path))
        do {
            _ = try Topology.xml(path: path)
            Issue.record("a garbage XML file loaded")
        } catch {
            #expect(error.code == .invalidData)
            #expect(error.description.contains(path))
        }
    }

    @Test func cpuListFormat() {
        #expect(formatCPUList([]) == "")
        #expect(formatCPUList([3]) == "3")
        #expect(formatCPUList([0, 1, 2, 3, 8, 10, 11]) == "0-3,8,10-11")
    }
}

/// A value handed from one thread to another; `done` orders the write before the read.
final class ThreadResult<T>: @unchecked Sendable {
    var value: T?
    let done = DispatchSemaphore(value: 0)
}

/// Runs `body` on a fresh thread and waits for its result.
func onFreshThread<T>(_ body: @escaping @Sendable () -> T) -> T {
    let box = ThreadResult<T>()
    Thread {
        box.value = body()
        box.done.signal()
    }.start()
    box.done.wait()
    return box.value!
}

@Suite struct Affinity {
    @Test func pinAndReadBack() throws {
        let allowed = try currentAffinity()
        #expect(!allowed.isEmpty)
        let target = allowed.last!
        let result = onFreshThread { () -> Result<[Int], LapwingError> in
            do throws(LapwingError) {
                try pinCurrentProcess(toCPU: target)
                return .success(try currentAffinity())
            } catch {
                return .failure(error)
            }
        }
        #expect(try result.get() == [target])
        #expect(try currentAffinity() == allowed)
    }

    @Test func pinToNegativeCPUIsRefused() {
        #expect(throws: LapwingError.self) { try pinCurrentProcess(toCPU: -1) }
    }
}

/// The daemon's start-up counts from sysfs agree with hwloc's on this machine.
@Suite struct QuickCountsTests {
    @Test func sysfsCountsAgreeWithHwloc() throws {
        let t = try Topology.current()
        #expect(QuickCounts.allowedCores() == t.cores.count)
        #expect(QuickCounts.numaNodes() == t.nodes.count)
    }

    @Test func kernelListsParse() {
        #expect(QuickCounts.count(ranges: "0\n") == 1)
        #expect(QuickCounts.count(ranges: "0-3,5,7-8") == 7)
        #expect(QuickCounts.count(ranges: "") == nil)
        #expect(QuickCounts.count(ranges: "3-1") == nil)
        #expect(QuickCounts.count(ranges: "x") == nil)
    }
}
