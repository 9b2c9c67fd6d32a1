import LapwingArena
import LapwingCore
import LapwingData
import LapwingJob
import LapwingTopology

/// Per-NUMA-node copies of the training set (`--node-data`; DimmWitted's full copy of the data
/// per node, HogWild++'s per-cluster data): the job host copies the loaded rows once into
/// memory bound to each node its workers sit on, before it forks them, and each worker reads
/// its node's copy, so no sample crosses the interconnect while training. The copies are named
/// memfds (`lapwing-data.JOB.nodeN`), mapped shared: forked workers inherit them without a
/// copy of their own, /proc/PID/numa_maps names their pages, and they are freed when the
/// job's last process exits. Algorithms see a `Dataset`, and never know which.
final class NodeDataCopies {
    /// Node -> its copy.
    private let copies: [Int: Dataset]
    /// What the started event reports: node, bytes, pages found on the node, readers.
    let report: [DataCopy]

    private init(copies: [Int: Dataset], report: [DataCopy]) {
        self.copies = copies
        self.report = report
    }

    /// The memfd name of a job's copy on `node`.
    static func name(jobID: String, node: Int) -> String { "lapwing-data.\(jobID).node\(node)" }

    /// The copies of `data` for the nodes of `placement`'s workers, or nil when `mode` asks
    /// for none there, or (`auto`) a node has not the free memory for one (`note` says so).
    /// `on` with too little memory on a node is an error.
    static func make(
        of data: Dataset, for placement: Placement, mode: NodeData, jobID: String, note: (String) -> Void
    ) throws(LapwingError) -> NodeDataCopies? {
        let nodes = Set(placement.workers.map(\.node)).sorted()
        guard mode.copies(workerNodes: nodes.count) else { return nil }
        let bytes = data.packedBytes
        // A bound page that finds its node full is not placed elsewhere: the OOM killer comes.
        // So each node must have the copy's bytes free, and a margin for everything else.
        let margin = 64 << 20
        for node in nodes {
            guard let free = NUMA.freeBytes(node: Int32(node)), free < bytes + margin else { continue }
            let why = "node \(node) has \(formatBytes(free)) free, and a copy of the training set takes \(formatBytes(bytes)) (and \(formatBytes(margin)) to spare)"
            if mode == .on { throw LapwingError(.noSpace, "--node-data on: \(why)") }
            note("no per-node copies of the training data: \(why)")
            return nil
        }
        var copies: [Int: Dataset] = [:]
        var report: [DataCopy] = []
        for node in nodes {
            let memory = try NodeMemory(bytes: bytes, node: Int32(node), name: name(jobID: jobID, node: node))
            // The binding places every page on the node whichever CPU writes it.
            copies[node] = data.copy(into: memory.base, owner: memory)
            let share = try memory.shareOnNode(samples: 64)
            report.append(
                DataCopy(
                    node: memory.node, bytes: memory.size, pagesOnNode: share,
                    workers: placement.workers.filter { $0.node == node }.map(\.worker).sorted()))
        }
        return NodeDataCopies(copies: copies, report: report)
    }

    /// The copy the processes on `node` read (a node without one: the first node's).
    func data(forNode node: Int) -> Dataset {
        copies[node] ?? copies[copies.keys.min()!]!
    }
}

extension TrainingData {
    /// The same rows read from `train` (a copy of the training set): the test set too when it
    /// is the training set (a holdout), so that the loaded rows can be freed.
    func reading(_ train: Dataset) -> TrainingData {
        TrainingData(
            train: train, trainRows: trainRows, machineEpochRows: machineEpochRows, test: test === self.train ? train : test,
            testRows: testRows, classes: classes)
    }
}
