import CLapwing
import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// The NUMA shape of a machine as hwloc reports it, reduced to plain values: NUMA nodes, packages,
/// physical cores with their hyper-thread siblings, and the node distance matrix.
///
/// CPUs are always OS PU indices (what `taskset`, `sched_setaffinity` and `/proc/cpuinfo` call a CPU);
/// NUMA nodes are OS node indices (what `numactl` and `mbind` use); cores and packages are hwloc
/// logical indices (positions in `cores` and `packages`), because OS core ids repeat across packages.
public struct Topology: Codable, Sendable, Equatable {
    /// A NUMA node: a memory bank and the CPUs local to it.
    public struct Node: Codable, Sendable, Equatable {
        /// The OS index of the node (`numactl --membind`, `mbind`).
        public var osIndex: Int
        /// Bytes of memory local to the node.
        public var memoryBytes: UInt64
        /// The CPUs (OS PU indices, ascending) local to the node; empty for a memory-only node.
        public var cpus: [Int]

        public init(osIndex: Int, memoryBytes: UInt64, cpus: [Int]) {
            self.osIndex = osIndex
            self.memoryBytes = memoryBytes
            self.cpus = cpus
        }
    }

    /// A processor package (socket).
    public struct Package: Codable, Sendable, Equatable {
        /// The position of the package in `packages` (hwloc's logical index).
        public var index: Int
        /// The OS index of the package (the `physical id` of /proc/cpuinfo); -1 when unknown.
        public var osIndex: Int
        /// The CPUs (OS PU indices, ascending) of the package.
        public var cpus: [Int]

        public init(index: Int, osIndex: Int, cpus: [Int]) {
            self.index = index
            self.osIndex = osIndex
            self.cpus = cpus
        }
    }

    /// A physical core and its hardware threads.
    public struct Core: Codable, Sendable, Equatable {
        /// The position of the core in `cores` (hwloc's logical index).
        public var index: Int
        /// The OS index of the core (the `core id` of /proc/cpuinfo, which repeats across packages);
        /// the PU's index where hwloc knows no core object.
        public var osIndex: Int
        /// The package (`Package.index`), or nil where the topology has no packages.
        public var package: Int?
        /// The NUMA node (`Node.osIndex`) local to the core.
        public var node: Int
        /// The hyper-thread siblings of the core: OS PU indices, in hwloc's order.
        public var cpus: [Int]

        public init(index: Int, osIndex: Int, package: Int?, node: Int, cpus: [Int]) {
            self.index = index
            self.osIndex = osIndex
            self.package = package
            self.node = node
            self.cpus = cpus
        }
    }

    /// Where the topology came from: "this machine", "synthetic: STR" or "xml: PATH".
    public var source: String
    /// NUMA nodes in hwloc's logical order.
    public var nodes: [Node]
    public var packages: [Package]
    /// Physical cores in hwloc's logical order.
    public var cores: [Core]
    /// Node distances: `distances[i][j]` is from `nodes[i]` to `nodes[j]` (relative latency, 10 = local).
    public var distances: [[Int]]
    /// True when hwloc had no distance matrix and `distances` is the default (10 local, 20 remote).
    public var distancesDefaulted: Bool

    public init(
        source: String, nodes: [Node], packages: [Package], cores: [Core], distances: [[Int]],
        distancesDefaulted: Bool
    ) {
        self.source = source
        self.nodes = nodes
        self.packages = packages
        self.cores = cores
        self.distances = distances
        self.distancesDefaulted = distancesDefaulted
    }

    /// Every CPU (OS PU index) of the topology, ascending.
    public var cpus: [Int] { cores.flatMap(\.cpus).sorted() }

    /// The CPUs (OS PU indices, ascending) local to the NUMA node with OS index `node`;
    /// empty for a memory-only node or a node the topology does not have.
    public func cpusOfNode(_ node: Int) -> [Int] {
        nodes.first { $0.osIndex == node }?.cpus ?? []
    }

    /// The nodes that have CPUs, in `nodes` order.
    public var nodesWithCPUs: [Node] { nodes.filter { !$0.cpus.isEmpty } }
}

// MARK: - Loading through hwloc

extension Topology {
    /// This machine, restricted to what the process may use: the CPUs of its affinity mask
    /// (`taskset`, `sched_getaffinity`) and the CPUs and memory nodes its cgroup allows.
    /// Memory nodes left without CPUs are kept, with an empty `cpus`.
    public static func current() throws(LapwingError) -> Topology {
        let source = "this machine"
        var raw: hwloc_topology_t?
        let r = lw_hwloc_load_current(&raw)
        guard r >= 0, let raw else {
            throw LapwingError.system("hwloc topology load", errno: -r, object: source)
        }
        let handle = HwlocHandle(raw)
        return handle.extract(source: source)
    }

    /// A synthetic topology in hwloc's syntax: levels from the top, each `type:count`, e.g.
    /// "pack:2 numa:2 core:8 pu:2" (2 packages of 2 NUMA nodes of 8 cores of 2 hyper-threads).
    /// NUMA nodes get 1 GiB each unless given, e.g. "numa:2(memory=64GB)".
    public static func synthetic(_ description: String) throws(LapwingError) -> Topology {
        let source = "synthetic: \(description)"
        var raw: hwloc_topology_t?
        let r = lw_hwloc_load_synthetic(description, &raw)
        guard r >= 0, let raw else {
            throw LapwingError(
                r == -EINVAL ? .invalidArgument : .system,
                "synthetic topology \"\(description)\": hwloc rejected the description"
                    + " (expected levels like \"pack:2 numa:2 core:8 pu:2\")",
                detail: "\(errnoDescription(-r)) (errno \(-r))", errno: -r)
        }
        let handle = HwlocHandle(raw)
        return handle.extract(source: source)
    }

    /// A topology saved as hwloc XML (`lstopo machine.xml`, or `exportXML(to:)`).
    public static func xml(path: String) throws(LapwingError) -> Topology {
        let source = "xml: \(path)"
        if access(path, R_OK) != 0 {
            throw LapwingError.system("access", errno: Glibc.errno, object: "topology XML \(path)")
        }
        var raw: hwloc_topology_t?
        let r = lw_hwloc_load_xml(path, &raw)
        guard r >= 0, let raw else {
            throw LapwingError(
                .invalidData, "topology XML \(path): hwloc could not load it",
                detail: "\(errnoDescription(-r)) (errno \(-r))", errno: -r)
        }
        let handle = HwlocHandle(raw)
        return handle.extract(source: source)
    }

    /// Writes a synthetic topology as hwloc XML to `path` (for tests and for `--xml` experiments).
    /// The corresponding C function is `hwloc_topology_export_xml`.
    public static func exportSyntheticXML(_ description: String, to path: String) throws(LapwingError) {
        var raw: hwloc_topology_t?
        let r = lw_hwloc_load_synthetic(description, &raw)
        guard r >= 0, let raw else {
            throw LapwingError.system("hwloc synthetic load", errno: -r, object: "synthetic topology \"\(description)\"")
        }
        let handle = HwlocHandle(raw)
        try handle.exportXML(to: path)
    }
}

/// Owns a loaded hwloc topology and destroys it when dropped; values are extracted and the
/// handle goes away at once, so no hwloc pointer outlives a loader.
struct HwlocHandle: ~Copyable {
    private let raw: hwloc_topology_t

    init(_ raw: hwloc_topology_t) { self.raw = raw }

    deinit { hwloc_topology_destroy(raw) }

    func exportXML(to path: String) throws(LapwingError) {
        try shimCall("hwloc_topology_export_xml", object: path) { lw_hwloc_export_xml(raw, path) }
    }

    func extract(source: String) -> Topology {
        let nodes = objects(HWLOC_OBJ_NUMANODE).map { obj in
            Topology.Node(
                osIndex: Int(obj.pointee.os_index),
                memoryBytes: obj.pointee.attr.pointee.numanode.local_memory,
                cpus: Self.cpus(obj.pointee.cpuset))
        }
        let packages = objects(HWLOC_OBJ_PACKAGE).map { obj in
            Topology.Package(
                index: Int(obj.pointee.logical_index), osIndex: Self.osIndex(obj),
                cpus: Self.cpus(obj.pointee.cpuset))
        }
        // Group PUs by their core; a PU without a core object (some VMs) is a core of its own.
        var cores: [Topology.Core] = []
        var coreByKey: [Int: Int] = [:]
        for pu in objects(HWLOC_OBJ_PU) {
            let cpu = Int(pu.pointee.os_index)
            let coreObj = hwloc_get_ancestor_obj_by_type(raw, HWLOC_OBJ_CORE, pu)
            let key = coreObj.map { Int($0.pointee.logical_index) } ?? -1 - Int(pu.pointee.logical_index)
            if let at = coreByKey[key] {
                cores[at].cpus.append(cpu)
                continue
            }
            let package = hwloc_get_ancestor_obj_by_type(raw, HWLOC_OBJ_PACKAGE, pu).map {
                Int($0.pointee.logical_index)
            }
            let node = nodes.first { $0.cpus.contains(cpu) }?.osIndex ?? nodes.first?.osIndex ?? 0
            coreByKey[key] = cores.count
            cores.append(
                Topology.Core(
                    index: cores.count, osIndex: coreObj.map(Self.osIndex) ?? cpu, package: package, node: node,
                    cpus: [cpu]))
        }
        let (distances, defaulted) = nodeDistances(nodes)
        return Topology(
            source: source, nodes: nodes, packages: packages, cores: cores, distances: distances,
            distancesDefaulted: defaulted)
    }

    private func objects(_ type: hwloc_obj_type_t) -> [hwloc_obj_t] {
        let n = hwloc_get_nbobjs_by_type(raw, type)
        guard n > 0 else { return [] }
        return (0..<UInt32(n)).compactMap { hwloc_get_obj_by_type(raw, type, $0) }
    }

    private static func osIndex(_ obj: hwloc_obj_t) -> Int {
        obj.pointee.os_index == UInt32.max ? -1 : Int(obj.pointee.os_index)
    }

    private static func cpus(_ set: hwloc_const_cpuset_t?) -> [Int] {
        guard let set else { return [] }
        var out: [Int] = []
        var i = hwloc_bitmap_first(set)
        while i >= 0 {
            out.append(Int(i))
            i = hwloc_bitmap_next(set, i)
        }
        return out
    }

    /// hwloc's NUMA latency matrix, reordered to `nodes`; the 10/20 default when there is none
    /// or it does not cover every node.
    private func nodeDistances(_ nodes: [Topology.Node]) -> ([[Int]], Bool) {
        let n = nodes.count
        let fallback = (0..<n).map { i in (0..<n).map { j in i == j ? 10 : 20 } }
        var count: UInt32 = 1
        var found: UnsafeMutablePointer<hwloc_distances_s>?
        let kind = UInt(HWLOC_DISTANCES_KIND_MEANS_LATENCY.rawValue)
        guard hwloc_distances_get_by_type(raw, HWLOC_OBJ_NUMANODE, &count, &found, kind, 0) == 0,
            count >= 1, let d = found
        else { return (fallback, true) }
        defer { hwloc_distances_release(raw, d) }
        let m = Int(d.pointee.nbobjs)
        var position: [Int: Int] = [:]
        for k in 0..<m {
            guard let obj = d.pointee.objs[k] else { continue }
            position[Int(obj.pointee.os_index)] = k
        }
        var matrix = fallback
        for i in 0..<n {
            for j in 0..<n {
                guard let a = position[nodes[i].osIndex], let b = position[nodes[j].osIndex] else {
                    return (fallback, true)
                }
                matrix[i][j] = Int(d.pointee.values[a * m + b])
            }
        }
        return (matrix, false)
    }
}
