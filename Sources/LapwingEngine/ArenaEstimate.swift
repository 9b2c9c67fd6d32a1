import LapwingArena
import LapwingCore
import LapwingJob
import LapwingModels
import LapwingTopology

extension JobSpec {
    /// The bytes of shared memory this job's arena will take, for admission before its host
    /// starts; nil when the model's widths come from the data (the host then checks the space
    /// itself, before it creates the arena) or the spec does not resolve.
    public func arenaBytes(numaNodes: Int) -> Int? {
        guard let spec = try? ModelSpec.parse(model), let d = spec.fixedParameterCount,
            let algorithm = try? Algorithms.resolve(self), let r = try? algorithm.replicaCount(numaNodes: Topology.workerNodeCount(nodesWithCPUs: numaNodes, workers: workers))
        else { return nil }
        let needs = Algorithms.arenaNeeds(algorithm, spec: self, replicas: r)
        let layout = try? ArenaLayout.compute(
            jobID: id.isEmpty ? "estimate" : id, parameterCount: d, replicaNodes: Array(repeating: -1, count: r),
            workers: workers, vectorsPerReplica: needs.vectorsPerReplica, barriers: needs.barriers,
            exchangeVectorsPerWorker: needs.exchangeVectorsPerWorker)
        return layout?.totalSize
    }
}
