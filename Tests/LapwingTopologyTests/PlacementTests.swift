import LapwingCore
import Testing

@testable import LapwingTopology

/// Checks that hold for every placement on `t`.
func checkInvariants(_ p: Placement, on t: Topology, workers w: Int) {
    #expect(p.workers.map(\.worker) == Array(0..<w))
    let cores = Set(t.cores.map(\.index))
    for s in p.workers {
        #expect(cores.contains(s.core))
        #expect(t.cores[s.core].cpus.contains(s.cpu))
        #expect(t.cores[s.core].node == s.node)
        // A worker's replica lives on its own node when every worker node has a replica.
        #expect(p.replicas[s.replica].node == s.node)
        #expect(p.replicas[s.replica].workers.contains(s.worker))
    }
    #expect(p.replicas.map(\.replica) == Array(0..<p.replicas.count))
    #expect(p.replicas.allSatisfy { !$0.workers.isEmpty })
    #expect(p.replicas.flatMap(\.workers).sorted() == Array(0..<w))
    for helper in [p.averager, p.host] {
        #expect(t.cores[helper.core].cpus.contains(helper.cpu))
        #expect(t.cores[helper.core].node == helper.node)
    }
}

func perNode(_ p: Placement, _ t: Topology) -> [Int] {
    t.nodes.map { n in p.workers.filter { $0.node == n.osIndex }.count }
}

@Suite struct PlacementTwoPackages {
    let t: Topology
    init() throws { t = try Topology.synthetic(twoPackages) }

    @Test(arguments: [1, 4, 8, 16, 32, 33, 64])
    func spread(workers w: Int) throws {
        let p = try t.place(workers: w)
        checkInvariants(p, on: t, workers: w)
        let counts = perNode(p, t)
        #expect(counts.max()! - counts.min()! <= 1)
        #expect(counts.reduce(0, +) == w)
        #expect(p.replicas.count == min(4, w))
        #expect(Set(p.workers.map(\.cpu)).count == w)  // no CPU runs two workers up to 64
        if w <= 32 {
            #expect(Set(p.workers.map(\.core)).count == w)
        } else {
            #expect(Set(p.workers.map(\.core)).count == 32)
            #expect(p.notes.contains { $0.contains("hyper-thread siblings") })
        }
        if w < 32 {
            // The averager has a physical core to itself.
            #expect(!p.workers.contains { $0.core == p.averager.core })
            #expect(!p.averager.shared)
        }
        if w == 64 {
            #expect(p.averager.shared)
            #expect(p.notes.contains { $0.hasPrefix("averager:") })
            #expect(p.notes.contains { $0.hasPrefix("job host:") })
        }
    }

    @Test func eightWorkersTwoPerNode() throws {
        let p = try t.place(workers: 8)
        #expect(p.workers.map(\.cpu) == [0, 2, 16, 18, 32, 34, 48, 50])
        #expect(p.workers.map(\.replica) == [0, 0, 1, 1, 2, 2, 3, 3])
        #expect(p.replicas.map(\.node) == [0, 1, 2, 3])
        #expect(p.averager == Placement.ProcessSlot(cpu: 4, core: 2, node: 0, shared: false))
        #expect(p.host == Placement.ProcessSlot(cpu: 20, core: 10, node: 1, shared: false))
        #expect(p.notes.isEmpty)
    }

    @Test func thirtyThreeWorkersUseOneSibling() throws {
        let p = try t.place(workers: 33)
        #expect(perNode(p, t) == [9, 8, 8, 8])
        #expect(p.workers[8].cpu == 1)  // the ninth worker of node 0 is a sibling
        // No free core is left; the averager takes a free sibling on a node with fewer workers.
        #expect(p.averager.node == 1)
        #expect(!p.averager.shared)
        #expect(p.notes.contains { $0.hasPrefix("averager: no free physical core") })
    }

    @Test func oversubscription() throws {
        let p = try t.place(workers: 65)
        checkInvariants(p, on: t, workers: 65)
        #expect(p.notes.contains { $0.contains("oversubscribed") })
    }

    @Test func localSGDOneReplicaPerWorker() throws {
        let p = try t.place(workers: 8, replicas: 8)
        checkInvariants(p, on: t, workers: 8)
        #expect(p.workers.map(\.replica) == Array(0..<8))
        #expect(p.replicas.map(\.node) == [0, 0, 1, 1, 2, 2, 3, 3])
    }

    @Test func replicasBetweenNodesAndWorkers() throws {
        let p = try t.place(workers: 16, replicas: 6)
        checkInvariants(p, on: t, workers: 16)
        #expect(p.replicas.map(\.node) == [0, 0, 1, 1, 2, 3])
        #expect(p.replicas.map(\.workers.count) == [2, 2, 2, 2, 4, 4])
    }

    @Test func fewerReplicasThanNodesAlternatePackages() throws {
        let p = try t.place(workers: 8, replicas: 2)
        #expect(p.replicas.map(\.node) == [0, 2])
        // Nodes 1 and 3 have no replica; all remote nodes are at 20, so they train the one in their package.
        #expect(p.replicas.map(\.workers) == [[0, 1, 2, 3], [4, 5, 6, 7]])
        #expect(p.notes.filter { $0.contains("no replica of its own") }.count == 2)
    }

    @Test func deterministic() throws {
        #expect(try t.place(workers: 13, replicas: 5) == t.place(workers: 13, replicas: 5))
    }
}

@Suite struct PlacementTwoCores {
    let t: Topology
    init() throws { t = try Topology.synthetic(twoCores) }

    @Test func oneWorkerLeavesTheOtherCoreToTheAverager() throws {
        let p = try t.place(workers: 1)
        checkInvariants(p, on: t, workers: 1)
        #expect(p.workers.map(\.cpu) == [0])
        #expect(p.averager == Placement.ProcessSlot(cpu: 1, core: 1, node: 0, shared: false))
        #expect(p.host.shared)
        #expect(p.notes.contains { $0.hasPrefix("job host:") && $0.contains("mostly sleeps") })
    }

    @Test func twoWorkersShareWithTheAverager() throws {
        let p = try t.place(workers: 2)
        checkInvariants(p, on: t, workers: 2)
        #expect(Set(p.workers.map(\.core)) == [0, 1])
        #expect(p.averager.shared)
        #expect(p.notes.contains { $0.hasPrefix("averager: no free CPU; shares CPU") })
    }

    @Test func twoReplicasOnOneNode() throws {
        let p = try t.place(workers: 2, replicas: 2)
        checkInvariants(p, on: t, workers: 2)
        #expect(p.replicas.map(\.node) == [0, 0])
        #expect(p.workers.map(\.replica) == [0, 1])
    }

    @Test func badCountsAreRefused() throws {
        for (w, r, needle) in [(0, nil, "workers"), (-3, nil, "workers"), (2, 0, "replicas"), (1, 2, "replica with no worker")]
        {
            do {
                _ = try t.place(workers: w, replicas: r)
                Issue.record("place(workers: \(w), replicas: \(String(describing: r))) succeeded")
            } catch {
                #expect(error.code == .invalidArgument)
                #expect(error.message.contains(needle))
            }
        }
    }
}

/// The default replica count is made for the nodes a job's workers span: with fewer workers than
/// nodes, or beside a memory-only node, one replica per node of the machine would leave replicas
/// that no worker trains (the job host asked the placement for them, and it refused the job).
@Suite struct DefaultReplicasForTheWorkersNodes {
    @Test(arguments: [1, 2, 3, 4, 8])
    func onePerNodeThatGetsWorkers(workers w: Int) throws {
        var t = try Topology.synthetic(twoPackages)
        // A memory-only node (CXL, HBM) beside the four with CPUs.
        t.nodes.append(Topology.Node(osIndex: 4, memoryBytes: 1 << 30, cpus: []))
        t.distances = t.distances.map { $0 + [30] } + [Array(repeating: 30, count: 4) + [10]]
        let n = t.workerNodeCount(workers: w)
        #expect(n == min(4, w))
        let p = try t.place(workers: w, replicas: n)
        checkInvariants(p, on: t, workers: w)
        #expect(p.replicas.count == n && Set(p.replicas.map(\.node)).count == n)
        #expect(!p.replicas.contains { $0.node == 4 })
        // What the job host asked for before: one per node of the machine.
        if w < t.nodes.count {
            #expect(throws: LapwingError.self) { try t.place(workers: w, replicas: t.nodes.count) }
        }
    }
}
