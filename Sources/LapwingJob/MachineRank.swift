import LapwingCore

/// This job host's place among the machines of a job that spans several (`lapwing run --mpi`
/// under mpirun or srun): its rank in the MPI world and the world's size, and how long its
/// bridge waits for the other machines in one exchange. Set by the launcher (from the
/// environment mpirun or srun gives each rank, and `--mpi-timeout`), never by a client.
public struct MachineRank: Codable, Sendable, Equatable {
    public var rank: Int
    public var size: Int
    /// Seconds the bridge waits for one exchange with the other machines before it gives up
    /// (`--mpi-timeout`; nil: `defaultTimeout`).
    public var timeout: Double?
    /// The rendezvous file of ranks started without a launcher (`--mpi-rendezvous`, an absolute
    /// path every machine sees): rank 0 publishes its ompi-server there; nil under mpirun or srun.
    public var rendezvous: String?

    /// The most machines a job may span.
    public static let maxSize = 65536
    /// `--mpi-timeout`'s default: longer than any legitimate wait of one exchange (another
    /// machine loading its data before the first, a slow machine's steps and rounds), short
    /// enough that a split network ends the job within minutes.
    public static let defaultTimeout = 300.0
    /// The longest `--mpi-timeout` (a day).
    public static let maxTimeout = 86_400.0

    public init(rank: Int, size: Int, timeout: Double? = nil, rendezvous: String? = nil) {
        self.rank = rank
        self.size = size
        self.timeout = timeout
        self.rendezvous = rendezvous
    }

    /// Seconds the bridge waits for one exchange.
    public var exchangeTimeout: Double { timeout ?? Self.defaultTimeout }

    /// Seconds as given, without a needless ".0": 300, 2.5, -1.
    public static func secondsText(_ s: Double) -> String {
        s.isFinite && s == s.rounded() && abs(s) < 1e15 ? String(Int(s)) : String(s)
    }

    public func validate() throws(LapwingError) {
        guard size >= 1, size <= Self.maxSize, rank >= 0, rank < size else {
            throw LapwingError(.invalidArgument, "machine rank \(rank) of \(size): needs 0 <= rank < size <= \(Self.maxSize)")
        }
        if let timeout {
            guard timeout.isFinite, timeout > 0, timeout <= Self.maxTimeout else {
                throw LapwingError(
                    .invalidArgument,
                    "--mpi-timeout \(Self.secondsText(timeout)): give the seconds to wait for the other machines, more than 0 and at most \(Int(Self.maxTimeout))")
            }
        }
        if let rendezvous, !rendezvous.hasPrefix("/") || rendezvous.utf8.count > 4096 || rendezvous.contains("\0") {
            throw LapwingError(.invalidArgument, "--mpi-rendezvous \(rendezvous.prefix(80)): needs an absolute path")
        }
    }
}
