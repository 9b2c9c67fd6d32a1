import Foundation
import LapwingCore
import LapwingModels
import LapwingTopology

/// What `lapwing-numa bench` measured. Every figure names the CPU its thread was pinned to and the
/// node its memory was bound to, with the share of sampled pages the kernel reports on that node.
struct BenchReport: Codable {
    struct Node: Codable {
        var node: Int
        var cpus: [Int]
        var memoryBytes: UInt64
    }

    /// A thread on `cpu` (of `cpuNode`) reading, writing and chasing pointers in memory of `memoryNode`.
    struct MemoryPair: Codable {
        var cpuNode: Int
        var memoryNode: Int
        var cpu: Int
        var local: Bool
        /// hwloc's relative distance (10 = local).
        var distance: Int
        var pagesOnNode: Double
        var readGBps: Double
        var writeGBps: Double
        /// One dependent load through a random cycle of cache lines.
        var latencyNanoseconds: Double
    }

    /// Two threads (one per CPU) on one cache line in memory of `memoryNode`.
    struct SharingPair: Codable {
        var nodes: [Int]
        var cpus: [Int]
        var memoryNode: Int
        var pagesOnNode: Double
        /// Atomic adds by both threads together to one counter.
        var contendedAddsMops: Double
        var nanosecondsPerAdd: Double
        /// One round trip of the line: a write by one thread seen by the other, and its answer back.
        var lineRoundTripNanoseconds: Double
    }

    /// LAP-SGD's averaging round over one replica per node beside a memcpy of the same bytes.
    struct AveragingRun: Codable {
        var parameters: Int
        var replicaNodes: [Int]
        var cpu: Int
        var pagesOnNodes: Double
        var rounds: Int
        var averagingGBps: Double
        var memcpyGBps: Double
        var ratioToMemcpy: Double
    }

    /// Single-threaded GEMM (C = A B, M x K times K x N) on one core of `node`, matrices on the node.
    struct Gemm: Codable {
        var node: Int
        var cpu: Int
        var shape: String
        var pagesOnNode: Double
        var gflops: Double
    }

    /// Remote figures over local ones, averaged over the pairs (nil on one node).
    struct RemoteOverLocal: Codable {
        var readGBps: Double
        var writeGBps: Double
        var latencyNanoseconds: Double
    }

    var source: String
    var numaAvailable: Bool
    var nodes: [Node]
    var distances: [[Int]]
    var budgetSeconds: Double
    var secondsPerFigure: Double
    var bufferBytes: Int
    var blas: BLASChoice
    var memory: [MemoryPair]
    var sharing: [SharingPair]
    var averaging: [AveragingRun]
    var gemm: [Gemm]
    var remoteOverLocal: RemoteOverLocal?
    var skipped: [String]
    var wallSeconds: Double

    static func remoteOverLocal(_ pairs: [MemoryPair]) -> RemoteOverLocal? {
        let local = pairs.filter(\.local), remote = pairs.filter { !$0.local }
        guard !local.isEmpty, !remote.isEmpty else { return nil }
        func ratio(_ key: KeyPath<MemoryPair, Double>) -> Double {
            let mean = { (ps: [MemoryPair]) in ps.map { $0[keyPath: key] }.reduce(0, +) / Double(ps.count) }
            return mean(remote) / mean(local)
        }
        return RemoteOverLocal(
            readGBps: ratio(\.readGBps), writeGBps: ratio(\.writeGBps), latencyNanoseconds: ratio(\.latencyNanoseconds))
    }

    func json() throws(LapwingError) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            return String(decoding: try encoder.encode(self), as: UTF8.self)
        } catch {
            throw LapwingError(.internalError, "cannot encode the bench report as JSON", detail: "\(error)")
        }
    }

    func text() -> String {
        func f(_ x: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", x) }
        func pct(_ x: Double) -> String { "\(Int((x * 100).rounded()))%" }
        var out: [String] = []
        out.append(
            "lapwing-numa bench: \(source), \(nodes.count) NUMA node\(nodes.count == 1 ? "" : "s")"
                + "\(numaAvailable ? "" : " (no NUMA support in the kernel: nothing bound)"), "
                + "\(formatBytes(bufferBytes)) buffers, \(f(secondsPerFigure, 3)) s per figure, \(f(wallSeconds, 1)) s in all")
        out.append("")
        out.append("memory: a thread on a CPU of one node, pages bound to a node")
        var rows = [["cpu node", "mem node", "cpu", "distance", "read GB/s", "write GB/s", "latency ns", "pages on node"]]
        for p in memory {
            rows.append([
                "\(p.cpuNode)", "\(p.memoryNode)", "\(p.cpu)", "\(p.distance)", f(p.readGBps), f(p.writeGBps),
                f(p.latencyNanoseconds, 1), pct(p.pagesOnNode),
            ])
        }
        out += textTable(rows, rightAligned: Set(0..<8)).map { "  " + $0 }
        if let r = remoteOverLocal {
            out.append("  remote / local: read \(f(r.readGBps))x, write \(f(r.writeGBps))x, latency \(f(r.latencyNanoseconds))x")
        }
        out.append("")
        out.append("a cache line shared by two threads (memory on the first node)")
        rows = [["nodes", "cpus", "atomic adds Mops/s", "ns per add", "line round trip ns", "pages on node"]]
        for s in sharing {
            rows.append([
                s.nodes.map(String.init).joined(separator: "-"), s.cpus.map(String.init).joined(separator: ","),
                f(s.contendedAddsMops), f(s.nanosecondsPerAdd, 1), f(s.lineRoundTripNanoseconds, 1), pct(s.pagesOnNode),
            ])
        }
        out += textTable(rows, rightAligned: Set(2..<6)).map { "  " + $0 }
        out.append("")
        out.append("averaging round (one replica per node) vs memcpy of the same bytes")
        rows = [["parameters", "replica nodes", "cpu", "averaging GB/s", "memcpy GB/s", "ratio", "pages on nodes"]]
        for a in averaging {
            rows.append([
                "\(a.parameters)", a.replicaNodes.map(String.init).joined(separator: ","), "\(a.cpu)", f(a.averagingGBps),
                f(a.memcpyGBps), f(a.ratioToMemcpy), pct(a.pagesOnNodes),
            ])
        }
        out += textTable(rows, rightAligned: [0, 2, 3, 4, 5, 6]).map { "  " + $0 }
        out.append("")
        out.append("GEMM on one core (BLAS \(blas.corename), \(blas.threads) thread)")
        rows = [["node", "cpu", "M x K x N", "GFLOP/s", "pages on node"]]
        for g in gemm { rows.append(["\(g.node)", "\(g.cpu)", g.shape, f(g.gflops, 1), pct(g.pagesOnNode)]) }
        out += textTable(rows, rightAligned: [0, 1, 3, 4]).map { "  " + $0 }
        if !skipped.isEmpty {
            out.append("")
            out.append("skipped:")
            out += skipped.map { "  - \($0)" }
        }
        return out.joined(separator: "\n")
    }
}
