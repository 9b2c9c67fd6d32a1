import LapwingCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What `lapwing-numa topology` prints: a topology and the placement Lapwing would choose on it.
public struct TopologyReport: Codable, Sendable, Equatable {
    public var topology: Topology
    public var placement: Placement

    public init(topology: Topology, placement: Placement) {
        self.topology = topology
        self.placement = placement
    }

    /// One JSON object with sorted keys.
    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding plain structs of ints, strings and arrays cannot fail.
        let data = try! encoder.encode(self)
        return String(decoding: data, as: UTF8.self)
    }

    /// The compact human-readable tables.
    public func text() -> String {
        let t = topology
        var out: [String] = []
        out.append("topology: \(t.source)")
        out.append(
            "\(t.nodes.count) NUMA node\(t.nodes.count == 1 ? "" : "s"), \(t.packages.count) package\(t.packages.count == 1 ? "" : "s"), "
                + "\(t.cores.count) core\(t.cores.count == 1 ? "" : "s"), \(t.cpus.count) CPU\(t.cpus.count == 1 ? "" : "s")")
        out.append("")
        var nodeRows = [["node", "package", "memory", "cores", "cpus"]]
        for node in t.nodes {
            let cores = t.cores.filter { $0.node == node.osIndex }
            let packages = Set(cores.compactMap(\.package)).sorted().map(String.init).joined(separator: ",")
            nodeRows.append([
                "\(node.osIndex)", packages.isEmpty ? "-" : packages, formatBytes(Int(clamping: node.memoryBytes)),
                "\(cores.count)", node.cpus.isEmpty ? "-" : formatCPUList(node.cpus),
            ])
        }
        out += textTable(nodeRows, rightAligned: [0, 1, 3])
        out.append("")
        out.append("cores (core: hyper-thread siblings):")
        for node in t.nodes {
            let cores = t.cores.filter { $0.node == node.osIndex }
            guard !cores.isEmpty else { continue }
            let items = cores.map { "\($0.index):\($0.cpus.map(String.init).joined(separator: "+"))" }
            for start in stride(from: 0, to: items.count, by: 8) {
                let label = start == 0 ? "node \(node.osIndex)" : ""
                let padded = label + String(repeating: " ", count: max(0, 9 - label.count))
                out.append("  \(padded)" + items[start..<min(start + 8, items.count)].joined(separator: "  "))
            }
        }
        out.append("")
        out.append("distances\(t.distancesDefaulted ? " (defaulted: hwloc reported none)" : ""):")
        var distRows = [["node"] + t.nodes.map { "\($0.osIndex)" }]
        for (i, node) in t.nodes.enumerated() {
            distRows.append(["\(node.osIndex)"] + t.distances[i].map(String.init))
        }
        out += textTable(distRows, rightAligned: Set(0...t.nodes.count)).map { "  " + $0 }
        out.append("")

        let p = placement
        out.append("placement: \(p.workers.count) worker\(p.workers.count == 1 ? "" : "s"), \(p.replicas.count) replica\(p.replicas.count == 1 ? "" : "s")")
        var workerRows = [["worker", "cpu", "core", "node", "replica"]]
        for s in p.workers {
            workerRows.append(["\(s.worker)", "\(s.cpu)", "\(s.core)", "\(s.node)", "\(s.replica)"])
        }
        workerRows.append(["averager", "\(p.averager.cpu)", "\(p.averager.core)", "\(p.averager.node)", "-"])
        workerRows.append(["host", "\(p.host.cpu)", "\(p.host.core)", "\(p.host.node)", "-"])
        out += textTable(workerRows, rightAligned: [1, 2, 3, 4])
        out.append("")
        var replicaRows = [["replica", "node", "workers"]]
        for r in p.replicas {
            replicaRows.append(["\(r.replica)", "\(r.node)", formatCPUList(r.workers)])
        }
        out += textTable(replicaRows, rightAligned: [0, 1])
        if !p.notes.isEmpty {
            out.append("")
            out.append("notes:")
            out += p.notes.map { "  - \($0)" }
        }
        return out.joined(separator: "\n")
    }
}

/// Rows of cells as lines of aligned columns (two spaces apart); the columns in `rightAligned` are
/// padded on the left. Trailing spaces are dropped.
public func textTable(_ rows: [[String]], rightAligned: Set<Int>) -> [String] {
    let columns = rows.map(\.count).max() ?? 0
    let widths = (0..<columns).map { c in rows.map { c < $0.count ? $0[c].count : 0 }.max() ?? 0 }
    return rows.map { row in
        row.enumerated().map { c, cell in
            let pad = String(repeating: " ", count: widths[c] - cell.count)
            return rightAligned.contains(c) ? pad + cell : cell + pad
        }.joined(separator: "  ").droppingTrailingSpaces()
    }
}

extension String {
    fileprivate func droppingTrailingSpaces() -> String {
        var s = Substring(self)
        while s.last == " " { s.removeLast() }
        return String(s)
    }
}
