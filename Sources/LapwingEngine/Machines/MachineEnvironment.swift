import LapwingCore
import LapwingJob

#if canImport(Glibc)
import Glibc
#endif

/// What a launcher (mpirun, srun) tells each rank through its environment, read before MPI is
/// initialised: the launcher process needs the rank to name the job's arena and output, and
/// only the bridge process initialises MPI (and checks that it agrees).
public enum MachineEnvironment {
    /// (rank, size) variables, in the order they are looked for: Open MPI, PMI (MPICH, srun
    /// --mpi=pmi2), Slurm.
    static let sources = [
        ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"), ("PMI_RANK", "PMI_SIZE"), ("SLURM_PROCID", "SLURM_NTASKS"),
    ]

    /// This process's rank among the job's machines, from the launcher's environment.
    public static func rank() throws(LapwingError) -> MachineRank {
        for (r, s) in sources {
            guard let rank = variable(r) else { continue }
            guard let rank = Int(rank), let size = variable(s).flatMap({ Int($0) }) else {
                throw LapwingError(.invalidArgument, "--mpi: \(r)=\(variable(r) ?? "") and \(s)=\(variable(s) ?? "(unset)") are not a rank and a size")
            }
            let machine = MachineRank(rank: rank, size: size)
            guard (try? machine.validate()) != nil else {
                throw LapwingError(
                    .invalidArgument, "--mpi: \(r)=\(rank) and \(s)=\(size): needs 0 <= rank < size <= \(MachineRank.maxSize)")
            }
            return machine
        }
        throw LapwingError(
            .invalidArgument, "--mpi: no MPI rank in the environment (\(sources.map(\.0).joined(separator: ", ")))",
            detail: "start every rank through a launcher: mpirun -n N lapwing run --mpi ..., or srun")
    }

    /// A name all ranks of one launch share (for the job id and output directory): the PMIx
    /// namespace (Open MPI, srun --mpi=pmix) or the Slurm job and step; nil when neither is set.
    public static func launchTag() -> String? {
        let tag =
            variable("PMIX_NAMESPACE")
            ?? variable("SLURM_JOB_ID").map { job in variable("SLURM_STEP_ID").map { "\(job)-\($0)" } ?? job }
        guard let tag else { return nil }
        let kept = String(tag.unicodeScalars.map { s -> Character in
            s.properties.isASCIIHexDigit || ("a"..."z").contains(s) || ("A"..."Z").contains(s) || s == "_" ? Character(s) : "-"
        }).prefix(40)
        return kept.isEmpty ? nil : String(kept)
    }

    /// Why `--mpi` cannot run here (libmpi cannot be loaded), or nil.
    public static func mpiUnavailable() -> String? { MPI.unavailable() }

    private static func variable(_ name: String) -> String? { getenv(name).map { String(cString: $0) } }
}
