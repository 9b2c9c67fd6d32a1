import CLapwing
import LapwingCore
import LapwingJob

#if canImport(Glibc)
import Glibc
#endif

/// This process's MPI world: Open MPI loaded at run time (CShims/mpi.c), so that `lapwing`
/// links no MPI library and needs one only for `--mpi`. Reductions are non-blocking
/// (MPI_Iallreduce) and waited for by testing with short sleeps in between, so that a rank
/// waiting for a slower one sleeps instead of spinning on a core its workers need. Every wait
/// has a deadline (`--mpi-timeout`): a network split kills no process, so without one every rank
/// would wait for the others forever.
enum MPI {
    /// Seconds one collective may take before `wait` gives up (set by `initialize`).
    nonisolated(unsafe) private static var timeout = MachineRank.defaultTimeout

    /// Loads libmpi and calls MPI_Init_thread; returns this process's rank and the world's size.
    /// Every collective after it fails once it has waited `timeout` seconds for the others
    /// (`isTimeout` tells that failure apart).
    /// With `form` (ranks started without a launcher: `Rendezvous`), this process is a singleton
    /// that then forms the job's communicator with the others under the rendezvous name.
    static func initialize(timeout: Double, form: (name: String, rank: Int, size: Int)? = nil) throws(LapwingError) -> MachineRank {
        Self.timeout = timeout
        try call("MPI initialisation") { lw_mpi_init($0, $1) }
        if let form {
            try call("MPI rendezvous") { lw_mpi_form(Int32(form.rank), Int32(form.size), form.name, timeout, $0, $1) }
        }
        return MachineRank(rank: Int(lw_mpi_rank()), size: Int(lw_mpi_size()))
    }

    /// Whether `error` is a collective that timed out. MPI is then left as it is: its request
    /// is still in flight, and MPI_Finalize would wait for the other machines too.
    static func isTimeout(_ error: LapwingError) -> Bool { error.errno == ETIMEDOUT }

    /// Whether libmpi can be loaded here (nil), or why not: checked by a launcher before it
    /// starts anything, without initialising MPI.
    static func unavailable() -> String? {
        var err = [CChar](repeating: 0, count: 512)
        return lw_mpi_probe(&err, err.count) == 0 ? nil : text(err)
    }

    /// Sums `count` floats at `values` over every rank, in place.
    static func sum(_ values: UnsafeMutablePointer<Float>, count: Int) throws(LapwingError) {
        guard count <= Int(Int32.max) else {
            throw LapwingError(.unsupported, "MPI: \(count) floats is more than one reduction takes (\(Int32.max))")
        }
        try call("MPI all-reduce (sum)") { lw_mpi_start_sum_float(values, Int32(count), $0, $1) }
        try wait()
    }

    /// The maximum over every rank of each of `values`, in place.
    static func max(_ values: inout [Int64]) throws(LapwingError) {
        let n = Int32(values.count)
        try values.withUnsafeMutableBufferPointer { (b) throws(LapwingError) in
            try call("MPI all-reduce (max)") { lw_mpi_start_max_int64(b.baseAddress!, n, $0, $1) }
            try wait()
        }
    }

    static func finalize() { _ = lw_mpi_finalize() }

    /// Tests the collective in flight until it completes, or throws once it has waited
    /// `timeout` seconds.
    private static func wait() throws(LapwingError) {
        let deadline = monotonicSeconds() + timeout
        while true {
            var done: Int32 = 0
            try call("MPI_Test") { done = lw_mpi_test($0, $1); return done < 0 ? -1 : 0 }
            if done == 1 { return }
            if monotonicSeconds() >= deadline {
                throw LapwingError(
                    .system,
                    "MPI: no answer from the other machines within \(MachineRank.secondsText(timeout)) s (--mpi-timeout): "
                        + "likely a network split or a stalled machine", errno: ETIMEDOUT)
            }
            var ts = timespec(tv_sec: 0, tv_nsec: 20_000)
            nanosleep(&ts, nil)
        }
    }

    /// A NUL-terminated message from the shim.
    private static func text(_ err: [CChar]) -> String {
        String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Runs a shim call; -1 is an error, -2 a wait that timed out (ETIMEDOUT: `isTimeout`).
    private static func call(_ what: String, _ body: (UnsafeMutablePointer<CChar>, Int) -> Int32) throws(LapwingError) {
        var err = [CChar](repeating: 0, count: 512)
        let rc = err.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
        if rc != 0 { throw LapwingError(.system, "\(what): \(text(err))", errno: rc == -2 ? ETIMEDOUT : nil) }
    }
}

extension MPI {
    /// Every rank's `value`, by rank.
    static func gather(_ value: Int32, rank: Int, size: Int) throws(LapwingError) -> [Int32] {
        var all = [Int32](repeating: 0, count: size)
        all[rank] = value
        try all.withUnsafeMutableBufferPointer { (b) throws(LapwingError) in
            try call("MPI all-gather (int)") { lw_mpi_start_gather_int(b.baseAddress!, $0, $1) }
            try wait()
        }
        return all
    }

    /// Every rank's message into its place: rank k's `counts[k]` bytes at `base + offsets[k]`
    /// (this rank's are there already).
    static func gather(_ base: UnsafeMutableRawPointer, counts: [Int32], offsets: [Int32]) throws(LapwingError) {
        try call("MPI all-gather (bytes)") { lw_mpi_start_gather_bytes(base, counts, offsets, $0, $1) }
        try wait()
    }
}
