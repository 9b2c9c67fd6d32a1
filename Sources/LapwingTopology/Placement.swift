import LapwingCore

/// Where a job's processes run and where its model replicas live.
public struct Placement: Codable, Sendable, Equatable {
    /// One worker process.
    public struct WorkerSlot: Codable, Sendable, Equatable {
        public var worker: Int
        /// The CPU (OS PU index) the worker is pinned to.
        public var cpu: Int
        /// The physical core (`Topology.Core.index`).
        public var core: Int
        /// The NUMA node (OS index).
        public var node: Int
        /// The replica (`ReplicaSlot.replica`) the worker trains.
        public var replica: Int

        public init(worker: Int, cpu: Int, core: Int, node: Int, replica: Int) {
            self.worker = worker
            self.cpu = cpu
            self.core = core
            self.node = node
            self.replica = replica
        }
    }

    /// A process other than a worker (the averager, the job host).
    public struct ProcessSlot: Codable, Sendable, Equatable {
        /// The CPU (OS PU index) the process is pinned to.
        public var cpu: Int
        public var core: Int
        /// The NUMA node (OS index).
        public var node: Int
        /// True when the CPU also runs a worker or another process.
        public var shared: Bool

        public init(cpu: Int, core: Int, node: Int, shared: Bool) {
            self.cpu = cpu
            self.core = core
            self.node = node
            self.shared = shared
        }
    }

    /// One model replica, placed in the memory of one node.
    public struct ReplicaSlot: Codable, Sendable, Equatable {
        public var replica: Int
        /// The NUMA node (OS index) whose memory holds the replica.
        public var node: Int
        /// The workers that train it, ascending.
        public var workers: [Int]

        public init(replica: Int, node: Int, workers: [Int]) {
            self.replica = replica
            self.node = node
            self.workers = workers
        }
    }

    public var workers: [WorkerSlot]
    public var averager: ProcessSlot
    public var host: ProcessSlot
    public var replicas: [ReplicaSlot]
    /// Compromises the placement had to make (shared cores, oversubscription, remote replicas).
    public var notes: [String]

    public init(
        workers: [WorkerSlot], averager: ProcessSlot, host: ProcessSlot, replicas: [ReplicaSlot], notes: [String]
    ) {
        self.workers = workers
        self.averager = averager
        self.host = host
        self.replicas = replicas
        self.notes = notes
    }
}

extension Topology {
    /// The nodes a placement of `workers` workers spans: workers go to the nodes with CPUs, one
    /// node after another, so min(those nodes, workers). The `numaNodes` an algorithm's default
    /// replica count is made for (one per node would otherwise count memory-only nodes, and
    /// nodes left without a worker, whose replicas no worker would train).
    public func workerNodeCount(workers: Int) -> Int { Self.workerNodeCount(nodesWithCPUs: nodesWithCPUs.count, workers: workers) }

    public static func workerNodeCount(nodesWithCPUs nodes: Int, workers: Int) -> Int { max(1, min(nodes, workers)) }

    /// The placement Lapwing chooses for `workers` workers and `replicas` model replicas.
    ///
    /// Rules, all deterministic:
    /// - Workers are spread evenly over the nodes that have CPUs (counts differ by at most one while
    ///   every node has a free physical core; a node that runs out of cores stops taking workers while
    ///   another still has free ones). Workers are numbered node by node.
    /// - Within a node a worker gets a physical core of its own; hyper-thread siblings are used only
    ///   once every physical core of the node has a worker, and beyond the node's CPUs workers share
    ///   CPUs round robin (noted).
    /// - `replicas` defaults to the number of nodes that get workers (the nodes with CPUs, at most
    ///   `workers`). It may exceed the node count (R = W is local SGD): replicas then go round robin
    ///   over those nodes, never more on a node than it has workers, and are numbered node by node,
    ///   so with R = W worker i trains replica i. A replica with no worker would never be trained, so
    ///   R > W is refused. With fewer replicas than nodes, replicas go to nodes alternating packages,
    ///   and the workers of a node without a replica train the nearest one (noted).
    /// - A worker trains a replica on its own node; the workers of a node are split evenly over the
    ///   node's replicas.
    /// - The averager gets a free physical core (on the node with the fewest processes), else a free
    ///   hyper-thread sibling, else shares the least loaded CPU (noted). The job host, which mostly
    ///   sleeps, is placed the same way after the averager.
    public func place(workers w: Int, replicas requested: Int? = nil) throws(LapwingError) -> Placement {
        guard w >= 1 else {
            throw LapwingError(.invalidArgument, "workers: must be at least 1 (got \(w))")
        }
        if let r = requested {
            guard r >= 1 else {
                throw LapwingError(.invalidArgument, "replicas: must be at least 1 (got \(r))")
            }
            guard r <= w else {
                throw LapwingError(
                    .invalidArgument,
                    "replicas: \(r) replicas for \(w) workers; a replica with no worker would never be trained")
            }
        }
        let usable = nodesWithCPUs
        guard !usable.isEmpty else {
            throw LapwingError(.invalidData, "topology (\(source)): no CPUs to place workers on")
        }
        var planner = Planner(topology: self, nodes: usable)
        var notes: [String] = []

        // Worker counts per node, then CPUs within each node.
        var counts = [Int](repeating: 0, count: usable.count)
        for _ in 0..<w {
            let coreFree = usable.indices.filter { counts[$0] < planner.coresOf[$0].count }
            let puFree = usable.indices.filter { counts[$0] < planner.slotsOf[$0].count }
            let pool = !coreFree.isEmpty ? coreFree : (!puFree.isEmpty ? puFree : Array(usable.indices))
            let pick = pool.min { (counts[$0], $0) < (counts[$1], $1) }!
            counts[pick] += 1
        }
        var slots: [(cpu: Int, core: Int, node: Int, position: Int)] = []
        for (n, node) in usable.enumerated() where counts[n] > 0 {
            let nodeSlots = planner.slotsOf[n]
            for j in 0..<counts[n] {
                let s = nodeSlots[j % nodeSlots.count]
                planner.occupy(cpu: s.cpu, node: n)
                slots.append((s.cpu, s.core, node.osIndex, n))
            }
            let physical = planner.coresOf[n].count
            if counts[n] > nodeSlots.count {
                notes.append(
                    "node \(node.osIndex): \(counts[n]) workers on \(nodeSlots.count) CPUs:"
                        + " oversubscribed, CPUs are shared round robin")
            } else if counts[n] > physical {
                notes.append(
                    "node \(node.osIndex): \(counts[n]) workers on \(physical) physical cores:"
                        + " \(counts[n] - physical) on hyper-thread siblings")
            }
        }

        // Replicas per node, numbered node by node.
        let workerNodes = usable.indices.filter { counts[$0] > 0 }
        let r = requested ?? workerNodes.count
        if requested == nil, usable.count > w {
            notes.append("replicas: default of one per node capped at \(w) (one per worker node)")
        }
        var replicaCount = [Int](repeating: 0, count: usable.count)
        if r >= workerNodes.count {
            for n in workerNodes { replicaCount[n] = 1 }
            var left = r - workerNodes.count
            var k = 0
            while left > 0 {
                let n = workerNodes[k % workerNodes.count]
                if replicaCount[n] < counts[n] {
                    replicaCount[n] += 1
                    left -= 1
                }
                k += 1
            }
        } else {
            for n in interleavedByPackage(workerNodes, nodes: usable).prefix(r) { replicaCount[n] = 1 }
        }
        var replicasOf = [[Int]](repeating: [], count: usable.count)
        var replicaNode: [Int] = []
        for n in usable.indices {
            for _ in 0..<replicaCount[n] {
                replicasOf[n].append(replicaNode.count)
                replicaNode.append(n)
            }
        }

        // Workers to replicas: their own node's, else the nearest node's.
        var attached = [Int](repeating: 0, count: usable.count)
        var workerSlots: [Placement.WorkerSlot] = []
        var first = 0
        for n in workerNodes {
            var home = n
            if replicasOf[n].isEmpty {
                // Nearest by distance, then in the same package, then the least shared.
                let i = nodes.firstIndex(of: usable[n])!
                let key = { (a: Int) -> (Int, Int, Int, Int) in
                    let distance = distances[i][nodes.firstIndex(of: usable[a])!]
                    let otherPackage = packageOf(usable[a]) == packageOf(usable[n]) ? 0 : 1
                    return (distance, otherPackage, attached[a], a)
                }
                home = usable.indices.filter { !replicasOf[$0].isEmpty }.min { key($0) < key($1) }!
                notes.append(
                    "node \(usable[n].osIndex): no replica of its own; its workers train replica"
                        + " \(replicasOf[home][0]) on node \(usable[home].osIndex)")
            }
            let local = replicasOf[home]
            let m = counts[n]
            for j in 0..<m {
                let s = slots[first + j]
                let replica = home == n ? local[j * local.count / m] : local[attached[home] % local.count]
                workerSlots.append(
                    Placement.WorkerSlot(worker: first + j, cpu: s.cpu, core: s.core, node: s.node, replica: replica))
            }
            attached[home] += m
            first += m
        }
        let replicaSlots = replicaNode.enumerated().map { i, n in
            Placement.ReplicaSlot(
                replica: i, node: usable[n].osIndex,
                workers: workerSlots.filter { $0.replica == i }.map(\.worker))
        }

        let averager = planner.placeHelper(named: "averager", sharingNote: "", notes: &notes)
        let host = planner.placeHelper(named: "job host", sharingNote: " (it mostly sleeps)", notes: &notes)
        return Placement(
            workers: workerSlots, averager: averager, host: host, replicas: replicaSlots, notes: notes)
    }

    /// The package of a node's first core; -1 when it has none.
    private func packageOf(_ node: Node) -> Int {
        cores.first { $0.node == node.osIndex }?.package ?? -1
    }

    /// Node positions ordered so that consecutive picks alternate packages:
    /// the first node of each package, then the second of each, and so on.
    private func interleavedByPackage(_ positions: [Int], nodes usable: [Node]) -> [Int] {
        var byPackage: [Int: [Int]] = [:]
        for p in positions { byPackage[packageOf(usable[p]), default: []].append(p) }
        let groups = byPackage.keys.sorted().map { byPackage[$0]! }
        var out: [Int] = []
        var rank = 0
        while out.count < positions.count {
            for g in groups where rank < g.count { out.append(g[rank]) }
            rank += 1
        }
        return out
    }
}

/// The CPU bookkeeping of one `place` call.
private struct Planner {
    let topology: Topology
    let nodes: [Topology.Node]
    /// Core indices per node position, in core order.
    let coresOf: [[Int]]
    /// Per node position, CPUs in the order workers take them: the first PU of every core,
    /// then the second PU of every core, and so on.
    let slotsOf: [[(cpu: Int, core: Int)]]
    /// Processes pinned to each CPU.
    var load: [Int: Int] = [:]
    /// Processes placed on each node position.
    var nodeLoad: [Int]

    init(topology: Topology, nodes: [Topology.Node]) {
        self.topology = topology
        self.nodes = nodes
        let coresOf = nodes.map { node in topology.cores.filter { $0.node == node.osIndex }.map(\.index) }
        self.coresOf = coresOf
        slotsOf = coresOf.map { cores in
            let depth = cores.map { topology.cores[$0].cpus.count }.max() ?? 0
            return (0..<depth).flatMap { rank in
                cores.compactMap { c in
                    let cpus = topology.cores[c].cpus
                    return rank < cpus.count ? (cpu: cpus[rank], core: c) : nil
                }
            }
        }
        nodeLoad = [Int](repeating: 0, count: nodes.count)
    }

    mutating func occupy(cpu: Int, node: Int) {
        load[cpu, default: 0] += 1
        nodeLoad[node] += 1
    }

    /// A free physical core, else a free sibling, else the least loaded CPU; preferring the node
    /// with the fewest processes, then node order, then the node's slot order.
    mutating func placeHelper(named name: String, sharingNote: String, notes: inout [String]) -> Placement.ProcessSlot {
        let byNode = nodes.indices.sorted { (nodeLoad[$0], $0) < (nodeLoad[$1], $1) }
        var chosen: (cpu: Int, core: Int, node: Int)?
        var kind = 0
        for n in byNode {
            if let c = coresOf[n].first(where: { topology.cores[$0].cpus.allSatisfy { load[$0, default: 0] == 0 } }) {
                chosen = (topology.cores[c].cpus[0], c, n)
                break
            }
        }
        if chosen == nil {
            kind = 1
            for n in byNode {
                if let s = slotsOf[n].first(where: { load[$0.cpu, default: 0] == 0 }) {
                    chosen = (s.cpu, s.core, n)
                    break
                }
            }
        }
        if chosen == nil {
            kind = 2
            var best: (load: Int, rank: Int, cpu: Int, core: Int, node: Int)?
            for (rank, n) in byNode.enumerated() {
                for s in slotsOf[n] {
                    let l = load[s.cpu, default: 0]
                    if best == nil || (l, rank) < (best!.load, best!.rank) { best = (l, rank, s.cpu, s.core, n) }
                }
            }
            chosen = (best!.cpu, best!.core, best!.node)
        }
        let c = chosen!
        let node = nodes[c.node].osIndex
        switch kind {
        case 1:
            notes.append("\(name): no free physical core; runs on CPU \(c.cpu), a hyper-thread sibling of core \(c.core)\(sharingNote)")
        case 2:
            let others = load[c.cpu, default: 0]
            notes.append(
                "\(name): no free CPU; shares CPU \(c.cpu) (node \(node)) with \(others) other process\(others == 1 ? "" : "es")\(sharingNote)")
        default:
            break
        }
        occupy(cpu: c.cpu, node: c.node)
        return Placement.ProcessSlot(cpu: c.cpu, core: c.core, node: node, shared: kind == 2)
    }
}
