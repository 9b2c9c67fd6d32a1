import Foundation
import LapwingCore
import LapwingEngine
import LapwingJob

#if canImport(Glibc)
import Glibc
#endif

/// `lapwing run --mpi`: this process is one rank of a job across machines (started by mpirun
/// or srun). It finds its rank in the launcher's environment and names its job and output
/// after it; its job host's bridge joins the MPI world.
enum MachineRun {
    /// This rank, with its bridge's `--mpi-timeout` (nil: the default), once Open MPI is known
    /// to load here. (With `--resume-from`, every rank resumes from the one checkpoint it names,
    /// so that all start from the same model and the same progress: `--resume-from` help.)
    /// With `rendezvous` (`--mpi-rendezvous FILE --mpi-rank R --mpi-ranks N`), the rank was
    /// started without a launcher: it is the rank given, and meets the others through FILE.
    static func rank(timeout: Double?, rendezvous: String?, rank: Int?, ranks: Int?) throws(LapwingError) -> MachineRank {
        var machine: MachineRank
        if let rendezvous {
            guard let rank, let ranks else {
                throw LapwingError(.invalidArgument, "--mpi-rendezvous: give this rank's --mpi-rank R and the job's --mpi-ranks N too")
            }
            machine = MachineRank(rank: rank, size: ranks, rendezvous: URL(fileURLWithPath: rendezvous).standardizedFileURL.path)
        } else {
            guard rank == nil, ranks == nil else {
                throw LapwingError(
                    .invalidArgument, "--mpi-rank and --mpi-ranks: only with --mpi-rendezvous (under mpirun or srun the launcher says)")
            }
            machine = try MachineEnvironment.rank()
        }
        machine.timeout = timeout
        try machine.validate()
        if let why = MachineEnvironment.mpiUnavailable() { throw LapwingError(.unsupported, "--mpi: \(why)") }
        return machine
    }

    /// The rank's job id (`BASE-rR`: its arena is its own even where ranks share a machine) and
    /// output directory (rank 0: DIR; rank R: DIR/rank-R). BASE is `--job-id`, else one name
    /// every rank of the launch shares (`MachineEnvironment.launchTag`).
    static func names(_ machine: MachineRank, jobID: String?, outputDir: String?) -> (id: String, dir: String) {
        let base = jobID ?? "mpi-\(MachineEnvironment.launchTag() ?? String(getppid()))"
        let dir = outputDir ?? "lapwing-runs/\(base)"
        return ("\(base)-r\(machine.rank)", machine.rank == 0 ? dir : "\(dir)/rank-\(machine.rank)")
    }
}
