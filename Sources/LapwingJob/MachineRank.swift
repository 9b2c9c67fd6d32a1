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
    /// How a rank submitted to a daemon meets the others (`lapwing submit --hosts`; nil
    /// otherwise): rank 0 starts the ompi-server and publishes it in a `rendezvous` event, the
    /// others are given what it published.
    public var meeting: MachineMeeting?

    /// The most machines a job may span.
    public static let maxSize = 65536
    /// `--mpi-timeout`'s default: longer than any legitimate wait of one exchange (another
    /// machine loading its data before the first, a slow machine's steps and rounds), short
    /// enough that a split network ends the job within minutes.
    public static let defaultTimeout = 300.0
    /// The longest `--mpi-timeout` (a day).
    public static let maxTimeout = 86_400.0

    public init(rank: Int, size: Int, timeout: Double? = nil, rendezvous: String? = nil, meeting: MachineMeeting? = nil) {
        self.rank = rank
        self.size = size
        self.timeout = timeout
        self.rendezvous = rendezvous
        self.meeting = meeting
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
        if let meeting {
            guard rendezvous == nil else {
                throw LapwingError(.invalidArgument, "machine: a rendezvous file and a daemons' meeting exclude each other")
            }
            try meeting.validate(rank: rank)
        }
    }
}

/// Where the ranks of a job submitted to several daemons meet (`lapwing submit --hosts`): rank 0
/// of the job starts an ompi-server and publishes its URI and the job's rendezvous name (a
/// `rendezvous` host event, kept in its job record); every other rank is given both.
public struct MachineMeeting: Codable, Sendable, Equatable {
    /// The ompi-server's URI (`3466526720.0;tcp://10.0.0.1:52753`); nil for rank 0.
    public var server: String?
    /// The name its ports are published under; nil for rank 0.
    public var name: String?

    public init(server: String? = nil, name: String? = nil) {
        self.server = server
        self.name = name
    }

    /// The characters of a server URI and of a rendezvous name (what ompi-server and
    /// `RendezvousServer` write), and their longest lengths.
    public static let serverCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789;:/.[]+-,")
    public static let nameCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")
    public static let maxServer = 4096, maxName = 160

    public static func validServer(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= maxServer && s.allSatisfy { serverCharacters.contains($0) }
    }

    public static func validName(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.count <= maxName && s.allSatisfy { nameCharacters.contains($0) }
    }

    public func validate(rank: Int) throws(LapwingError) {
        if rank == 0 {
            guard server == nil, name == nil else {
                throw LapwingError(.invalidArgument, "machine rank 0 starts the job's ompi-server: it is given no server or name")
            }
            return
        }
        guard let server, Self.validServer(server) else {
            throw LapwingError(
                .invalidArgument, "machine rank \(rank): the ompi-server URI \"\((server ?? "").prefix(80))\" is missing or malformed")
        }
        guard let name, Self.validName(name) else {
            throw LapwingError(.invalidArgument, "machine rank \(rank): the rendezvous name \"\((name ?? "").prefix(80))\" is missing or malformed")
        }
    }
}
