import Foundation
import LapwingCore
import LapwingProtocol

#if canImport(Glibc)
import Glibc
#endif

/// What the daemon's configuration file sets (`/etc/lapwing/lapwingd.conf`, or
/// `$XDG_CONFIG_HOME/lapwing/lapwingd.conf` for a user's daemon; lapwingd(8) lists every key):
/// limits per user and per group, fair share, retention. systemd-style INI:
///
///     [Limits]                  # every user
///     CoresPerUser = 8          # cores one user's running jobs may hold together
///     QueuedJobsPerUser = 50    # jobs one user may have waiting
///     ArenaBytesPerUser = 16G   # /dev/shm one user's running jobs may hold together
///     MaxPriority = 0           # the highest --priority a user may give a job (-100 to 100)
///     [User:alice]              # one user's own limits (the same keys, without "PerUser")
///     Cores = 16
///     [Group:students]          # the limits of every member of a group
///     Cores = 2
///     [Scheduling]
///     FairShare = yes           # the least-served user's job starts first
///     FairShareWindow = 86400   # seconds of history that "served" counts
///     CountOtherLoad = no       # cores other processes keep busy are not handed out
///     AcrossMachines = yes      # jobs across machines (lapwing submit --hosts) are accepted
///     [Retention]
///     KeepFinishedJobs = 1000   # finished jobs kept (the oldest go first)
///     KeepFinishedDays = 30     # finished jobs older than this go
///
/// A user's limit is the first that applies of: their [User:] section, the [Group:] sections
/// of their groups (the largest value among them), [Limits].
public struct DaemonSettings: Sendable, Equatable {
    public struct Limits: Sendable, Equatable {
        public var cores: Int?
        public var queuedJobs: Int?
        public var arenaBytes: Int?
        /// The highest priority the user may give a job (nil in a section: not set there).
        public var maxPriority: Int?

        public init(cores: Int? = nil, queuedJobs: Int? = nil, arenaBytes: Int? = nil, maxPriority: Int? = nil) {
            self.cores = cores
            self.queuedJobs = queuedJobs
            self.arenaBytes = arenaBytes
            self.maxPriority = maxPriority
        }
    }

    /// [Limits]: every user's.
    public var limits = Limits(queuedJobs: 100, maxPriority: 0)
    public var users: [String: Limits] = [:]
    public var groups: [String: Limits] = [:]
    public var fairShare = true
    public var fairShareWindow = 86400.0
    /// Admission leaves out the cores that other (non-Lapwing) processes keep busy (`OtherLoad`).
    public var countOtherLoad = false
    /// Whether ranks of jobs across machines are accepted (`lapwing submit --hosts`): rank 0 runs
    /// an ompi-server on a TCP port, and every rank talks TCP to the others' addresses, as
    /// mpirun's own daemons do; a site whose machines' network is not trusted says no.
    public var acrossMachines = true
    public var keepFinishedJobs: Int?
    public var keepFinishedDays: Double?
    /// The file these came from (nil: the defaults).
    public var source: String?

    public init() {}

    /// The limits of `uid`: its [User:] section, else the most generous [Group:] section among
    /// its groups, else [Limits]; key by key. `from` names the section of each key, in the order
    /// cores, queued jobs, arena bytes, maximum priority.
    public func limits(of uid: UInt32) -> (limits: Limits, from: [String]) {
        var out = limits
        var from = ["[Limits]", "[Limits]", "[Limits]", "[Limits]"]
        guard !users.isEmpty || !groups.isEmpty else { return (out, from) }
        let account = UserAccount(uid: uid)
        let groupLimits = groups.filter { account.groups.contains($0.key) }.sorted { $0.key < $1.key }
        func pick(_ key: WritableKeyPath<Limits, Int?>, _ i: Int) {
            var best: (Int, String)?
            for (name, g) in groupLimits {
                if let v = g[keyPath: key], best.map({ v > $0.0 }) ?? true { best = (v, "[Group:\(name)]") }
            }
            if let best {
                out[keyPath: key] = best.0
                from[i] = best.1
            }
            if let name = account.name, let u = users[name], let v = u[keyPath: key] {
                out[keyPath: key] = v
                from[i] = "[User:\(name)]"
            }
        }
        pick(\.cores, 0)
        pick(\.queuedJobs, 1)
        pick(\.arenaBytes, 2)
        pick(\.maxPriority, 3)
        return (out, from)
    }

    // MARK: Reading

    /// Reads a file; errors name it, the line and the reason ("lapwingd.conf:7: ...").
    public static func read(_ path: String) throws(LapwingError) -> DaemonSettings {
        var s = try settings(of: KeyValueFile.read(path))
        s.source = path
        return s
    }

    public static func parse(_ text: String, name: String) throws(LapwingError) -> DaemonSettings {
        try settings(of: KeyValueFile.parse(text, name: name))
    }

    private static func settings(of file: KeyValueFile) throws(LapwingError) -> DaemonSettings {
        var s = DaemonSettings()
        for (header, line) in file.sections {
            func bad(_ why: String) -> LapwingError { LapwingError(.invalidArgument, "\(file.name):\(line): \(why)") }
            guard ["Limits", "Scheduling", "Retention"].contains(header) || header.hasPrefix("User:") || header.hasPrefix("Group:")
            else {
                throw bad("unknown section [\(header)]; the sections are [Limits], [User:NAME], [Group:NAME], [Scheduling], [Retention]")
            }
            if let colon = header.firstIndex(of: ":"), header[header.index(after: colon)...].isEmpty {
                throw bad("[\(header)] needs a name after the colon")
            }
        }
        for e in file.entries {
            func bad(_ why: String) -> LapwingError { e.error(in: file.name, why) }
            let (key, value) = (e.key, e.value)
            guard let section = e.section else { throw bad("\(key) is outside any section") }
            func priority() throws(LapwingError) -> Int {
                let range = SubmitArgs.priorities
                guard let v = Int(value), range.contains(v) else {
                    throw bad("\(key) = \(value): needs a whole number from \(range.lowerBound) to \(range.upperBound)")
                }
                return v
            }
            func count(_ max: Int = 1 << 20) throws(LapwingError) -> Int {
                guard let v = Int(value), v >= 0, v <= max else { throw bad("\(key) = \(value): needs a whole number from 0 to \(max)") }
                return v
            }
            func bytes() throws(LapwingError) -> Int {
                guard let v = parseBytes(value) else { throw bad("\(key) = \(value): needs a size such as 512M, 16G or 1T") }
                return v
            }
            func flag() throws(LapwingError) -> Bool { try file.flag(e) }
            switch section {
            case "Limits":
                switch key {
                case "CoresPerUser": s.limits.cores = try count(4096)
                case "QueuedJobsPerUser": s.limits.queuedJobs = try count()
                case "ArenaBytesPerUser": s.limits.arenaBytes = try bytes()
                case "MaxPriority": s.limits.maxPriority = try priority()
                default: throw bad("unknown key \(key) in [Limits]; keys: CoresPerUser, QueuedJobsPerUser, ArenaBytesPerUser, MaxPriority")
                }
            case "Scheduling":
                switch key {
                case "FairShare": s.fairShare = try flag()
                case "FairShareWindow": s.fairShareWindow = Double(try count(365 * 86400))
                case "CountOtherLoad": s.countOtherLoad = try flag()
                case "AcrossMachines": s.acrossMachines = try flag()
                default: throw bad("unknown key \(key) in [Scheduling]; keys: FairShare, FairShareWindow, CountOtherLoad, AcrossMachines")
                }
            case "Retention":
                switch key {
                case "KeepFinishedJobs": s.keepFinishedJobs = try count()
                case "KeepFinishedDays": s.keepFinishedDays = Double(try count(36500))
                default: throw bad("unknown key \(key) in [Retention]; keys: KeepFinishedJobs, KeepFinishedDays")
                }
            default:
                let isUser = section.hasPrefix("User:")
                let who = String(section.drop { $0 != ":" }.dropFirst())
                var l = (isUser ? s.users[who] : s.groups[who]) ?? Limits()
                switch key {
                case "Cores": l.cores = try count(4096)
                case "QueuedJobs": l.queuedJobs = try count()
                case "ArenaBytes": l.arenaBytes = try bytes()
                case "MaxPriority": l.maxPriority = try priority()
                default: throw bad("unknown key \(key) in [\(section)]; keys: Cores, QueuedJobs, ArenaBytes, MaxPriority")
                }
                if isUser { s.users[who] = l } else { s.groups[who] = l }
            }
        }
        return s
    }

    /// "512M", "16G", "1T", "4096" (bytes; K, M, G, T are powers of 1024).
    static func parseBytes(_ text: String) -> Int? {
        guard let last = text.last else { return nil }
        let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        if let unit = units[Character(last.uppercased())] {
            guard let n = Int(text.dropLast()), n >= 0, n <= Int.max / unit else { return nil }
            return n * unit
        }
        return Int(text).flatMap { $0 >= 0 ? $0 : nil }
    }
}

/// A uid's name and the names of its groups (`UserDatabase`).
struct UserAccount {
    let name: String?
    let groups: Set<String>

    init(uid: UInt32) {
        name = UserDatabase.name(of: uid)
        groups = name == nil ? [] : UserDatabase.groups(of: uid)
    }
}
