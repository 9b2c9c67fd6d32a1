import CLapwing
import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// The kernel's NUMA policy calls, as the arena uses them (libnuma's numaif.h through CShims).
public enum NUMA {
    /// Whether the kernel supports NUMA policies (`numa_available`). Without it every page is
    /// on node 0 and binding is a no-op.
    public static var isAvailable: Bool { lw_numa_available() == 0 }

    /// Whether `node` exists and has memory this process may use.
    public static func isUsable(node: Int32) -> Bool { lw_numa_node_usable(node) == 1 }

    /// The free bytes of `node`, or nil when the kernel does not say (no NUMA support).
    public static func freeBytes(node: Int32) -> Int? {
        var free: Int64 = 0
        return lw_numa_node_free(node, &free) == 0 ? Int(free) : nil
    }

    /// The system page size.
    public static var pageSize: Int { Int(sysconf(Int32(_SC_PAGESIZE))) }

    /// The node of the page holding `address`, faulting the page in if this process has not
    /// touched it yet. Without NUMA support, 0.
    ///
    /// The corresponding C function is `get_mempolicy` (`MPOL_F_NODE | MPOL_F_ADDR`).
    public static func nodeOfPage(_ address: UnsafeRawPointer) throws(LapwingError) -> Int32 {
        guard isAvailable else { return 0 }
        return try shimCall("get_mempolicy", object: "page at \(address)") { lw_numa_node_of_address(address) }
    }

    /// For each address, the node of its page, without faulting anything in: a negative value is
    /// -errno for that page (-ENOENT: not present in this process, -EFAULT: not mapped).
    ///
    /// The corresponding C function is `move_pages` (query mode: no target nodes).
    public static func queryPages(_ addresses: [UnsafeRawPointer]) throws(LapwingError) -> [Int32] {
        guard isAvailable else { return Array(repeating: 0, count: addresses.count) }
        var pages: [UnsafeMutableRawPointer?] = addresses.map { UnsafeMutableRawPointer(mutating: $0) }
        var status = [Int32](repeating: 0, count: addresses.count)
        try shimCall("move_pages", object: "\(addresses.count) pages") {
            lw_numa_query_pages(UInt(pages.count), &pages, &status)
        }
        return status
    }
}

/// Where the sampled pages of one replica (all its vectors) are.
public struct ReplicaPlacement: Sendable, Equatable, Codable {
    public var replica: Int
    /// The node the replica was bound to at creation; -1 if none.
    public var intendedNode: Int32
    /// For each sampled page (evenly spread over the replica's vectors), its node; a negative
    /// value is -errno from the query.
    public var pageNodes: [Int32]
    /// The node of all sampled pages if they agree, else nil.
    public var node: Int32? {
        guard let first = pageNodes.first, first >= 0, pageNodes.allSatisfy({ $0 == first }) else { return nil }
        return first
    }
    /// Whether every sampled page is on the intended node (true when none was intended).
    public var isOnIntendedNode: Bool {
        intendedNode < 0 || pageNodes.allSatisfy { $0 == intendedNode }
    }
}

extension Arena {
    /// The NUMA node of the page holding `address`, which must lie in this arena.
    ///
    /// The corresponding C function is `get_mempolicy` (`MPOL_F_NODE | MPOL_F_ADDR`).
    public func nodeOfPage(_ address: UnsafeRawPointer) throws(LapwingError) -> Int32 {
        withUnsafeMapping { base, size in
            precondition(
                address >= UnsafeRawPointer(base) && address < UnsafeRawPointer(base + size),
                "address \(address) is outside the arena")
        }
        do throws(LapwingError) {
            return try NUMA.nodeOfPage(address)
        } catch {
            var e = error
            e.message = "\(Arena.segmentPath(jobID: jobID)): \(error.message)"
            throw e
        }
    }

    /// For each replica, the nodes of `samplesPerReplica` pages spread evenly over its vectors.
    /// Pages are queried with `move_pages`; a page not yet present in this process is asked again
    /// with `get_mempolicy`, which faults it in.
    public func replicaNodeReport(samplesPerReplica: Int = 8) throws(LapwingError) -> [ReplicaPlacement] {
        precondition(samplesPerReplica > 0, "sample at least one page")
        let page = NUMA.pageSize
        let base = withUnsafeMapping { base, _ in UnsafeRawPointer(base) }
        var report: [ReplicaPlacement] = []
        for r in 0..<layout.replicaCount {
            let start = layout.vectorOffset(0, ofReplica: r)
            let pages = layout.vectorsPerReplica * layout.vectorStride / page
            let n = min(samplesPerReplica, pages)
            let addresses = (0..<n).map { i in base + start + (i * pages / n) * page }
            var nodes = try NUMA.queryPages(addresses)
            for i in nodes.indices where nodes[i] == -ENOENT {
                nodes[i] = try nodeOfPage(addresses[i])
            }
            report.append(ReplicaPlacement(replica: r, intendedNode: layout.replicaNodes[r], pageNodes: nodes))
        }
        return report
    }
}
