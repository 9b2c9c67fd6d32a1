import LapwingArena
import LapwingCore
import LapwingModels

extension JobSpec {
    /// The bytes of shared memory this job's arena will take, for admission before its host
    /// starts; nil when the model's widths come from the data (the host then checks the space
    /// itself, before it creates the arena).
    public func arenaBytes(numaNodes: Int) -> Int? {
        guard let spec = try? ModelSpec.parse(model), let d = spec.fixedParameterCount else { return nil }
        let r = algorithm == .hogwild ? 1 : (replicas ?? max(1, numaNodes))
        let layout = try? ArenaLayout.compute(
            jobID: id.isEmpty ? "estimate" : id, parameterCount: d, replicaNodes: Array(repeating: -1, count: r),
            workers: workers, vectorsPerReplica: SharedState.vectorsPerReplica)
        return layout?.totalSize
    }
}
