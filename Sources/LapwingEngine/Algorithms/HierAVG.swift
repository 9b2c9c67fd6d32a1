import LapwingCore
import LapwingJob

/// Hier-AVG (Zhou & Cong, "A Distributed Hierarchical SGD Algorithm with Sparse Global
/// Reduction", arXiv:1903.05133): one replica per worker, the workers split into groups; each
/// worker takes K1 private steps, then its group averages its replicas exactly; every K2-th such
/// round (every K1*K2 steps) the average is global instead. Groups are the workers' NUMA nodes
/// (`--groups 0`), or `--groups G` contiguous runs of workers of about equal size; local
/// averages stay on a node, and only the sparse global ones cross.
///
/// Barriers: barrier 0 has every worker (global rounds); barrier 1+g has group g's workers only
/// (configured in the job host before the fork). A round is local SGD's round over the set's
/// replicas: barrier, each worker averages its slice (by its rank in the set) and writes it into
/// every replica of the set, barrier. A group of one worker skips its group rounds. The last step
/// ends with a global average. With K2 = 1 (or one group) every round is local SGD's round with
/// K = K1, the same arithmetic: the result is bitwise that of `local-sgd --period K1`.
///
/// Bytes, per worker and round: 2 * (m-1) * d/m floats for a set of m replicas; the global ones
/// across nodes for replicas on other nodes.
///
/// Defaults: K1 = 4, K2 = 4, so global averages come as often as local SGD's default (every 16
/// steps) and each node averages 4 times as often in between, within its own memory.
struct HierAVG: TrainingAlgorithm {
    static let name = "hier-avg"
    static let summary =
        "a replica per worker in groups (NUMA nodes): group average every K1 steps, global every K1*K2 (Zhou & Cong 2019)"
    static let knobs: [Knob] = [
        Knob("period", default: 4, range: 1...1_000_000, integer: true, help: "K1: private steps between two group averages"),
        Knob("global-period", default: 4, range: 1...1_000_000, integer: true, help: "K2: every K2-th average is global"),
        Knob("groups", default: 0, range: 0...4096, integer: true, help: "groups of workers (0: one per NUMA node)"),
        Knob(
            "machine-period", default: 1, range: 1...1_000_000, integer: true,
            help: "K3 (--mpi): every K3-th global average also crosses machines"),
    ]

    let workers: Int
    let period: Int
    let globalPeriod: Int
    let groupCount: Int
    let machinePeriod: Int

    init(spec: JobSpec, knobs: Knobs) throws(LapwingError) {
        try LocalSGD.requireReplicaPerWorker(spec, name: Self.name)
        workers = spec.workers
        period = knobs.int("period")
        globalPeriod = knobs.int("global-period")
        groupCount = knobs.int("groups")
        machinePeriod = knobs.int("machine-period")
        if groupCount > workers {
            throw LapwingError(
                .invalidArgument, "--groups \(groupCount): hier-avg needs at least one worker per group (\(workers) workers)")
        }
    }

    static let compressionSite: CompressionSite? = .workers

    func replicaCount(numaNodes: Int) throws(LapwingError) -> Int { workers }

    /// Barrier 0 for global rounds, then one per possible group.
    func arenaNeeds(replicas: Int) -> ArenaNeeds { ArenaNeeds(barriers: 1 + workers) }

    func trainerShape(_ c: WorkerContext) -> TrainerShape { LocalSteps.trainerShape(c) }

    func configureBarriers(_ shared: SharedState, replicaWorkers: [[Int]], replicaNodes: [Int32]) {
        for (g, members) in groups(replicaWorkers: replicaWorkers, replicaNodes: replicaNodes).enumerated() {
            shared.barrier(1 + g).configure(participants: members.count)
        }
    }

    func workerStep(_ c: WorkerContext) -> any WorkerStep {
        let all = groups(replicaWorkers: c.replicaWorkers, replicaNodes: c.replicaNodes)
        let g = all.firstIndex { $0.contains(c.index) }!
        return HierAVGStep(
            c, group: all[g], groupBarrier: 1 + g, period: period, globalPeriod: globalPeriod, machinePeriod: machinePeriod)
    }

    /// Across machines (`--mpi`), a third level: every K3-th global average (every K1*K2*K3
    /// steps, and the last) is followed by the machines' average, the workers waiting. With
    /// K3 = 1 the paper's global average is over every machine's workers.
    func machineLevel() -> MachineLevel? { .lockstep }

    /// The groups, as ascending lists of workers: `--groups G` contiguous runs (worker w in group
    /// w*G/W), or one per NUMA node of the workers' replicas, in the order the workers come.
    func groups(replicaWorkers: [[Int]], replicaNodes: [Int32]) -> [[Int]] {
        if groupCount > 0 {
            var out = [[Int]](repeating: [], count: groupCount)
            for w in 0..<workers { out[w * groupCount / workers].append(w) }
            return out
        }
        var node = [Int32](repeating: -1, count: workers)
        for (r, ws) in replicaWorkers.enumerated() { for w in ws { node[w] = replicaNodes[r] } }
        var order: [Int32] = []
        var out: [[Int]] = []
        for w in 0..<workers {
            if let k = order.firstIndex(of: node[w]) {
                out[k].append(w)
            } else {
                order.append(node[w])
                out.append([w])
            }
        }
        return out
    }
}

/// A Hier-AVG worker: K1 private steps, then a group round, every K2-th round a global one.
struct HierAVGStep: WorkerStep {
    var local: LocalSteps
    var global: ReplicaExchange
    /// The global round compressed (`--compress`); group rounds stay exact (within a node).
    var compressed: CompressedReplicaExchange?
    /// Nil for a group of one worker (nothing to average).
    var group: ReplicaExchange?
    var machine: MachineRoundPoint?
    var ledger: ExchangeLedger
    let period: Int
    let globalPeriod: Int
    let machinePeriod: Int
    var sinceAverage = 0
    var rounds = 0

    init(_ c: WorkerContext, group members: [Int], groupBarrier: Int, period: Int, globalPeriod: Int, machinePeriod: Int) {
        local = LocalSteps(c)
        global = ReplicaExchange(c, barrier: 0, replicas: Array(0..<c.replicaWorkers.count), rank: c.index)
        compressed = c.compression.map {
            CompressedReplicaExchange(c, $0, barrier: 0, members: Array(0..<c.spec.workers), rank: c.index)
        }
        let replicaOf = Dictionary(
            uniqueKeysWithValues: c.replicaWorkers.enumerated().flatMap { r, ws in ws.map { ($0, r) } })
        group =
            members.count > 1
            ? ReplicaExchange(
                c, barrier: groupBarrier, replicas: members.map { replicaOf[$0]! }, rank: members.firstIndex(of: c.index)!)
            : nil
        machine = MachineRoundPoint(c)
        ledger = ExchangeLedger(c)
        self.period = period
        self.globalPeriod = globalPeriod
        self.machinePeriod = machinePeriod
    }

    mutating func step(_ t: inout Trainer) -> Bool {
        guard let loss = local.step(&t) else { return false }
        sinceAverage += 1
        if sinceAverage >= period || local.isLast {
            sinceAverage = 0
            rounds += 1
            if (rounds % globalPeriod == 0 || local.isLast) && compressed != nil {
                let progress = local.progress
                guard ledger.time({ compressed!.average(progress: progress) }) else { return false }
            } else if rounds % globalPeriod == 0 || local.isLast {
                guard ledger.time(&global, { $0.average() }) else { return false }
            } else if group != nil {
                guard ledger.time(&group!, { $0.average() }) else { return false }
            }
            if machine != nil && ((rounds % globalPeriod == 0 && rounds / globalPeriod % machinePeriod == 0) || local.isLast) {
                guard machine!.run(progress: local.progress, last: local.isLast) else { return false }
            }
        }
        t.finish(samples: t.batch, loss: loss)
        return true
    }
}
