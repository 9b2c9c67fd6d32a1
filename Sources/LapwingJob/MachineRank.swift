import LapwingCore

/// This job host's place among the machines of a job that spans several (`lapwing run --mpi`
/// under mpirun or srun): its rank in the MPI world and the world's size. Set by the launcher
/// (from the environment mpirun or srun gives each rank), never by a client.
public struct MachineRank: Codable, Sendable, Equatable {
    public var rank: Int
    public var size: Int

    /// The most machines a job may span.
    public static let maxSize = 65536

    public init(rank: Int, size: Int) {
        self.rank = rank
        self.size = size
    }

    public func validate() throws(LapwingError) {
        guard size >= 1, size <= Self.maxSize, rank >= 0, rank < size else {
            throw LapwingError(.invalidArgument, "machine rank \(rank) of \(size): needs 0 <= rank < size <= \(Self.maxSize)")
        }
    }
}
