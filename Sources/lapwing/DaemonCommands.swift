import ArgumentParser
import Foundation
import LapwingCore
import LapwingJob
import LapwingOptions
import LapwingData
import LapwingEngine
import LapwingProtocol
import LapwingTopology

#if canImport(Glibc)
import Glibc
#endif

/// Options every daemon verb takes.
struct ClientOptions: ParsableArguments {
    @Option(help: "The daemon's control socket (default: $LAPWING_SOCKET, else the user daemon's, else /run/lapwing/control.sock).")
    var socket: String?

    @Flag(help: "Print the result as JSON.")
    var json = false

    func connect() throws -> DaemonClient { try DaemonClient(socket: socket) }
}

/// Where a submitted job goes in its owner's queue (submit, study).
struct PriorityOption: ParsableArguments {
    // Unconditional: a negative number is the value, not an option.
    @Option(
        parsing: .unconditional,
        help: ArgumentHelp(
            "The job's priority among your own queued jobs: higher starts first, then the older; \(SubmitArgs.priorities.lowerBound) to \(SubmitArgs.priorities.upperBound), default 0. Anyone may go below 0; above it only as far as MaxPriority in lapwingd.conf allows you. Fair share between users comes first.",
            valueName: "n"))
    var priority: Int?

    func validate() throws {
        if let priority, !SubmitArgs.priorities.contains(priority) {
            throw ValidationError(
                "--priority \(priority): needs a whole number from \(SubmitArgs.priorities.lowerBound) to \(SubmitArgs.priorities.upperBound)")
        }
    }
}

/// Exit codes of the daemon verbs: the one table of every Lapwing tool (`ExitStatus`).
enum CLIExit {
    static let failure = ExitStatus.failure
    static let usage = ExitStatus.usage
    static let unreachable = ExitStatus.unreachable
    static let permission = ExitStatus.permission
    static let noSuchJob = ExitStatus.noSuchJob
    static let interrupted = ExitStatus.interrupted
}

/// A daemon's error as the CLI reports it: the message on stderr and an exit code by kind.
struct CLIFailure: Error, CustomStringConvertible {
    let message: String
    let code: Int32

    init(message: String, code: Int32) {
        self.message = message
        self.code = code
    }

    init(_ e: LapwingError) {
        message = e.description
        code = ExitStatus.of(e.code)
    }

    var description: String { message }
}

/// Runs a verb body, turning failures into a message and an exit code.
func runVerb(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let f as CLIFailure {
        writeError("lapwing: \(f.message)\n")
        throw ExitCode(f.code)
    } catch let e as LapwingError {
        writeError("lapwing: \(e)\n")
        throw ExitCode(CLIFailure(e).code)
    }
}

func printJSON(_ value: some Encodable) {
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: (try? enc.encode(value)) ?? Data(), as: UTF8.self))
}

struct SubmitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit", abstract: "Queue a training job on the daemon (the options of `run`).",
        discussion: """
            The data files are opened here, with your rights, and passed to the daemon as descriptors.

            \(Algorithms.help)
            """)

    @OptionGroup var training: TrainingOptions
    @OptionGroup var queue: PriorityOption
    @OptionGroup var client: ClientOptions
    @Flag(help: "Watch the job until it ends (like `lapwing watch`).")
    var watch = false
    @OptionGroup var machines: MachineSubmitOptions

    func run() throws {
        try runVerb {
            guard training.jobID == nil else {
                throw CLIFailure(
                    message: "--job-id: the daemon names the jobs it queues (the id is printed); --job-id is for `lapwing run`",
                    code: CLIExit.usage)
            }
            // Checked here as the daemon will: without --workers it gives one per core, and at
            // least one per replica.
            var spec = try training.spec(defaultWorkers: max(1, training.replicas ?? 1), id: "pending", outputDir: nil)
            if let hosts = machines.hosts {
                _ = try machines.machineRank()
                guard !watch else { throw CLIFailure(message: "--watch with --hosts: watch rank 0's job on its host", code: CLIExit.usage) }
                let submitted = CommandLine.arguments.drop { $0 != "submit" }.dropFirst()
                let placed = try HostsSubmit(
                    hosts: try HostsSubmit.parse(hosts), options: try HostsSubmit.jobOptions(Array(submitted)),
                    timeout: machines.mpiTimeout ?? MachineRank.defaultTimeout, local: client
                ).run()
                if client.json {
                    printJSON(["ranks": placed])
                } else {
                    for (r, p) in placed.enumerated() { print("\(r) \(p.host) \(p.job)") }
                }
                return
            }
            spec.machine = try machines.machineRank()
            let c = try client.connect()
            let record = try Self.submit(spec, defaultWorkers: training.workers == nil, priority: queue.priority, to: c)
            if client.json && !watch {
                printJSON(record)
            } else {
                writeError("lapwing: job \(record.id) \(record.state.rawValue)\(record.reason.map { " (\($0))" } ?? "")\n")
                if !watch { print(record.id) }
            }
            if watch { try Watcher(client: c, json: client.json).watch(record.id) }
        }
    }
}

extension SubmitCommand {
    /// Queues `spec` on the daemon behind `c`, its data files opened here and sent as
    /// descriptors (the daemon never opens a client's path); `defaultWorkers`: the daemon
    /// chooses the workers (one per core it may use); `priority`: nil for the default.
    static func submit(_ spec: JobSpec, defaultWorkers: Bool, priority: Int?, to c: DaemonClient) throws -> JobRecord {
        let inputs = try DataSpec.parse(spec.data).inputFiles()
        var fds: [Int32] = []
        defer { for fd in fds { close(fd) } }
        for f in inputs {
            let fd = open(f.path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw LapwingError.system("open", errno: errno, object: f.path) }
            fds.append(fd)
        }
        var sent = spec
        if defaultWorkers { sent.workers = 0 }
        let args = try SubmitArgs(
            spec: clientJSON(sent), files: inputs.map { FileRole(role: $0.role, name: $0.path) }, priority: priority)
        return try c.call(.submit, args, fds: fds)
    }
}

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List the daemon's jobs, oldest first.",
        discussion: "Times are local; DURATION is the time it trained (so far, for a running job).")
    @Option(help: "Only the newest N jobs (before the filters).") var last: Int?
    @Option(help: ArgumentHelp("Only the jobs of this user (a name or a uid).", valueName: "user")) var user: String?
    @Option(help: ArgumentHelp("Only jobs in these states, comma-separated (queued, running, paused, succeeded, failed, cancelled, interrupted).", valueName: "states"))
    var state: String?
    @Option(help: ArgumentHelp("Only jobs whose name contains this.", valueName: "text")) var name: String?
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if let last, last < 1 { throw ValidationError("--last \(last): must be at least 1") }
        if let state {
            for s in state.split(separator: ",", omittingEmptySubsequences: false) where JobRecord.State(rawValue: String(s)) == nil {
                throw ValidationError("--state \(s): choose among \(JobRecord.State.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }
        if let user, UserDatabase.uid(of: user) == nil { throw ValidationError("--user \(user): no such user") }
    }

    func run() throws {
        try runVerb {
            var jobs = try Self.jobs(client.connect(), last: last)
            let states = state.map { Set($0.split(separator: ",").compactMap { JobRecord.State(rawValue: String($0)) }) }
            let owner = user.flatMap { UserDatabase.uid(of: $0) }
            jobs = jobs.filter { j in
                (states?.contains(j.state) ?? true) && (owner.map { j.owner == $0 } ?? true)
                    && (name.map { n in j.spec.name?.contains(n) == true } ?? true)
            }
            if client.json { return printJSON(jobs) }
            let rows = jobs.map { j -> [String] in
                let epoch = j.progress?.epoch.map { ProgressLine.fixed($0, 2) } ?? (j.summary.map { ProgressLine.fixed($0.epochs, 2) } ?? "-")
                let acc = (j.summary?.testAccuracy ?? j.progress?.testAccuracy).map { ProgressLine.fixed($0 * 100, 2) + "%" } ?? "-"
                return [
                    j.id, j.spec.name ?? "-", j.state.rawValue, UserDatabase.name(of: j.owner) ?? "\(j.owner)", "\(j.priority ?? 0)",
                    j.spec.algorithm.name, j.spec.model,
                    "\(epoch)/\(ProgressLine.fixed(j.spec.epochs, 0))", acc, Times.clock(j.submitted),
                    j.started.map { s in Times.duration((j.ended ?? (j.state.isFinished ? s : Date().timeIntervalSince1970)) - s) } ?? "-",
                ]
            }
            let header = ["JOB", "NAME", "STATE", "USER", "PRIO", "ALGORITHM", "MODEL", "EPOCH", "TEST ACC", "SUBMITTED", "DURATION"]
            for line in textTable([header] + rows, rightAligned: []) { print(line) }
        }
    }
}

extension ListCommand {
    /// The daemon's jobs, oldest first (only the newest `last`, when given): it answers a page
    /// at a time, newest first, and the pages go back until one is empty.
    static func jobs(_ connection: DaemonClient, last: Int? = nil) throws -> [JobRecord] {
        var jobs: [JobRecord] = []
        var before: String?
        while last.map({ jobs.count < $0 }) ?? true {
            let want = min(ListArgs.maxLimit, last.map { $0 - jobs.count } ?? ListArgs.maxLimit)
            let page: [JobRecord] = try connection.call(.list, ListArgs(before: before, limit: want))
            guard let first = page.first else { break }
            jobs = page + jobs
            before = first.id
        }
        return jobs
    }
}

/// Times as the CLI shows them: local clock times, and durations.
enum Times {
    /// "14:03:12" today, "12-01 14:03" on another day.
    static func clock(_ t: Double) -> String {
        var seconds = time_t(t)
        var parts = tm()
        localtime_r(&seconds, &parts)
        var now = time(nil)
        var today = tm()
        localtime_r(&now, &today)
        if parts.tm_year == today.tm_year && parts.tm_yday == today.tm_yday {
            return String(format: "%02d:%02d:%02d", parts.tm_hour, parts.tm_min, parts.tm_sec)
        }
        return String(format: "%04d-%02d-%02d %02d:%02d", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min)
    }

    /// "42s", "3m05s", "2h14m".
    static func duration(_ s: Double) -> String {
        let n = max(0, Int(s.rounded()))
        if n < 60 { return "\(n)s" }
        if n < 3600 { return String(format: "%dm%02ds", n / 60, n % 60) }
        return String(format: "%dh%02dm", n / 3600, (n % 3600) / 60)
    }
}

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show one job.")
    @Argument(help: "The job id.", completion: .jobIDs) var job: String
    @OptionGroup var client: ClientOptions

    func run() throws {
        try runVerb {
            let r: JobRecord = try client.connect().call(.status, JobRef(job: job))
            if client.json { return printJSON(r) }
            print("job \(r.id)\(r.spec.name.map { " (\($0))" } ?? ""): \(r.state.rawValue)\(r.reason.map { " (\($0))" } ?? "")")
            print("  user \(UserDatabase.name(of: r.owner) ?? "\(r.owner)") (uid \(r.owner)); \(r.spec.algorithm.description) \(r.spec.model) on \(r.spec.data)")
            var times = "  submitted \(Times.clock(r.submitted))"
            if let s = r.started { times += ", started \(Times.clock(s))" }
            if let e = r.ended { times += ", ended \(Times.clock(e))" }
            if let s = r.started { times += "; trained \(Times.duration((r.ended ?? Date().timeIntervalSince1970) - s))" }
            print(times)
            print("  \(r.spec.workers) workers, batch \(r.spec.batch), \(ProgressLine.fixed(r.spec.epochs, 2)) epochs; priority \(r.priority ?? 0)")
            if let copies = r.dataCopies { print("  " + DataCopy.describe(copies)) }
            if let p = r.progress { print("  " + ProgressLine.format(p, accuracy: p.testAccuracy)) }
            if let group = r.cgroup {
                print("  control group \(group)\(r.cpuSeconds.map { ", CPU time " + ProgressLine.fixed($0, 1) + " s" } ?? "")")
            }
            if let s = r.summary {
                print("  result: test accuracy \(s.testAccuracy.map { ProgressLine.fixed($0 * 100, 2) + "%" } ?? "n/a"), \(ProgressLine.si(s.samplesPerSecond)) samples/s")
            }
        }
    }
}

/// Sends one of pause, resume, cancel.
struct JobVerb {
    static func run(_ verb: Verb, _ job: String, _ client: ClientOptions) throws {
        try runVerb {
            let r: JobRecord = try client.connect().call(verb, JobRef(job: job))
            if client.json { return printJSON(r) }
            print("job \(r.id): \(r.state.rawValue)\(r.reason.map { " (\($0))" } ?? "")")
        }
    }
}

struct PauseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Pause a running job (workers wait; nothing is lost).")
    @Argument(help: "The job id.", completion: .jobIDs) var job: String
    @OptionGroup var client: ClientOptions
    func run() throws { try JobVerb.run(.pause, job, client) }
}

struct ResumeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Resume a paused job, or one that was interrupted, failed or cancelled from its checkpoint.",
        discussion: """
            A job that ended goes on from the checkpoint it left (hogwild, lap-sgd, lpp-sgd): the \
            CLI opens its data files again, as submit does, and the job is queued once more under \
            the same id, its schedule and sample budget going on where they stopped.
            """)
    @Argument(help: "The job id.", completion: .jobIDs) var job: String
    @OptionGroup var client: ClientOptions

    func run() throws {
        try runVerb {
            let c = try client.connect()
            let record: JobRecord = try c.call(.status, JobRef(job: job))
            var args = ResumeArgs(job: job)
            var fds: [Int32] = []
            defer { for fd in fds { close(fd) } }
            if record.state.isFinished {
                // The daemon never opens a client's path: the data go again as descriptors.
                let inputs = try DataSpec.parse(record.spec.data).inputFiles()
                for f in inputs {
                    let fd = open(f.path, O_RDONLY | O_CLOEXEC)
                    guard fd >= 0 else { throw LapwingError.system("open", errno: errno, object: f.path) }
                    fds.append(fd)
                }
                args.files = inputs.map { FileRole(role: $0.role, name: $0.path) }
            }
            let r: JobRecord = try c.call(.resume, args, fds: fds)
            if client.json { return printJSON(r) }
            print("job \(r.id): \(r.state.rawValue)\(r.reason.map { " (\($0))" } ?? "")")
        }
    }
}

struct CancelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a queued or running job.")
    @Argument(help: "The job id.", completion: .jobIDs) var job: String
    @OptionGroup var client: ClientOptions
    func run() throws { try JobVerb.run(.cancel, job, client) }
}

struct RemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm", abstract: "Remove finished jobs with their files (model, metrics, logs, checkpoint).")
    @Argument(help: "The job ids.", completion: .jobIDs) var jobs: [String]
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if jobs.isEmpty { throw ValidationError("name at least one job") }
    }

    func run() throws {
        try runVerb {
            let c = try client.connect()
            for job in jobs {
                let r: JobRecord = try c.call(.remove, JobRef(job: job))
                if client.json { printJSON(r) } else { print("job \(r.id): removed") }
            }
        }
    }
}

struct WatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch", abstract: "Follow a job's progress until it ends.",
        discussion: "Redraws one progress line on a terminal, prints plain lines when piped. Exit status: 0 succeeded, 1 failed or cancelled, 130 interrupted.")
    @Argument(help: "The job id.", completion: .jobIDs) var job: String
    @OptionGroup var client: ClientOptions

    func run() throws {
        try runVerb { try Watcher(client: client.connect(), json: client.json).watch(job) }
    }
}

/// Streams a job's events to a progress line and ends with its summary.
struct Watcher {
    let client: DaemonClient
    let json: Bool

    func watch(_ job: String) throws {
        var progress = ProgressLine()
        let final: JobRecord = try client.stream(.watch, JobRef(job: job)) { (e: HostEvent) in
            if !json && (e.event == .progress || e.event == .evaluation) { progress.show(e) }
        }
        progress.finish()
        if json {
            if let s = final.summary { printJSON(s) } else { printJSON(final) }
        } else if let s = final.summary {
            RunCommand.printSummary(s)
        } else {
            print("job \(final.id) \(final.state.rawValue)\(final.reason.map { " (\($0))" } ?? "")")
        }
        switch final.state {
        case .succeeded: return
        case .interrupted: throw ExitCode(CLIExit.interrupted)
        default: throw ExitCode(CLIExit.failure)
        }
    }
}

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Write a job's model (safetensors), or with --metrics its evaluations (JSON lines), to a file.")
    @Argument(help: "The job id.", completion: .jobIDs) var job: String
    @Option(name: .shortAndLong, help: "The file to write.") var output: String
    @Flag(help: "Write the job's metrics (one JSON object per evaluation) instead of its model.") var metrics = false
    @OptionGroup var client: ClientOptions

    func run() throws {
        try runVerb {
            let what: ExportArgs.What = metrics ? .metrics : .model
            let info = try Self.export(job, what, from: client.connect(), to: output)
            if client.json {
                printJSON(info)
            } else {
                print("job \(job): \(what.rawValue) (\(formatBytes(info.bytes))) written to \(output)")
            }
        }
    }
}

extension ExportCommand {
    /// Writes job `job`'s model or metrics, as the daemon sends them, to `output` (atomically).
    static func export(_ job: String, _ what: ExportArgs.What, from c: DaemonClient, to output: String) throws -> ExportResult {
        let (info, fds): (ExportResult, [Int32]) = try c.callWithDescriptors(.export, ExportArgs(job: job, what: what))
        guard let fd = fds.first else { throw LapwingError(.internalError, "the daemon sent no \(what.rawValue) for job \(job)") }
        defer { for f in fds { close(f) } }
        try AtomicFile.write(to: output) { (w: inout FileWriter) throws(LapwingError) in
            var buf = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n < 0 { throw LapwingError.system("read", errno: errno, object: "job \(job) \(what.rawValue)") }
                if n == 0 { break }
                try w.write(buf[0..<n])
            }
        }
        return info
    }
}

struct LogsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs", abstract: "Print a job's log: its start and placement, evaluations, checkpoints, warnings, its end or error.")
    @Argument(help: "The job id.", completion: .jobIDs) var job: String
    @Flag(name: [.customShort("f"), .customLong("follow")], help: "Keep printing what the job logs until it ends.")
    var follow = false
    @OptionGroup var client: ClientOptions

    func run() throws {
        try runVerb {
            let c = try client.connect()
            let (_, fds): (ExportResult, [Int32]) = try c.callWithDescriptors(.logs, JobRef(job: job))
            defer { for f in fds { close(f) } }
            guard let fd = fds.first else { return }
            // The descriptor is the log file itself: what the host appends later reads from it too.
            var buf = [UInt8](repeating: 0, count: 1 << 16)
            func drain() {
                while true {
                    let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                    if n <= 0 { break }
                    _ = buf.withUnsafeBytes { write(1, $0.baseAddress, n) }
                }
            }
            drain()
            while follow {
                let r: JobRecord = try c.call(.status, JobRef(job: job))
                usleep(250_000)
                drain()
                if r.state.isFinished { break }
            }
        }
    }
}

struct DaemonTopologyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "topology", abstract: "The daemon's cores, NUMA nodes and placement.")
    @OptionGroup var client: ClientOptions

    func run() throws {
        try runVerb {
            let t: TopologyReport = try client.connect().call(.topology)
            print(client.json ? t.json() : t.text())
        }
    }
}

/// A spec as a client sends it: without the fields a daemon sets itself (it refuses them).
func clientJSON(_ spec: JobSpec) throws(ProtocolError) -> JSONValue {
    guard case .object(var fields) = try JSONValue(encoding: spec) else { return try JSONValue(encoding: spec) }
    for f in JobSpec.launcherFields { fields[f] = nil }
    return .object(fields)
}

/// A rank of a job across machines through the daemons: `--hosts` for the user, the others for
/// the submit that `--hosts` runs on each host (`HostsSubmit`).
struct MachineSubmitOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Run the job across these machines, one rank each, through their daemons: rank r goes to the r-th host's lapwingd (`local`: this machine's; another host through $LAPWING_RSH, default ssh, running $LAPWING_REMOTE, default lapwing). Rank 0 starts an ompi-server where the others meet it (docs/machines-daemons.md). Prints each rank's host and job.",
            valueName: "h0,h1,..."))
    var hosts: String?

    @Option(
        name: .customLong("mpi-timeout"), parsing: .unconditional,
        help: ArgumentHelp(
            "With --hosts: seconds each rank waits for the others in one exchange, rank 0 for them to join, and this command for rank 0's ompi-server (its time in its daemon's queue included), default \(Int(MachineRank.defaultTimeout)).",
            valueName: "seconds"))
    var mpiTimeout: Double?

    @Option(name: .customLong("machine-rank"), help: .hidden) var rank: Int?
    @Option(name: .customLong("machine-ranks"), help: .hidden) var ranks: Int?
    @Option(name: .customLong("machine-server"), help: .hidden) var server: String?
    @Option(name: .customLong("machine-name"), help: .hidden) var name: String?

    /// This submit's rank of a job across machines (nil: a job on this machine alone).
    func machineRank() throws -> MachineRank? {
        if hosts != nil && (rank != nil || ranks != nil || server != nil || name != nil) {
            throw CLIFailure(message: "--machine-rank, --machine-ranks, --machine-server, --machine-name: not with --hosts (it sets them for each host)", code: CLIExit.usage)
        }
        guard let rank, let ranks else {
            if rank != nil || ranks != nil || server != nil || name != nil || (mpiTimeout != nil && hosts == nil) {
                throw CLIFailure(message: "--machine-rank, --machine-ranks, --machine-server, --machine-name, --mpi-timeout: only as lapwing submit --hosts runs them", code: CLIExit.usage)
            }
            return nil
        }
        let m = MachineRank(rank: rank, size: ranks, timeout: mpiTimeout, meeting: MachineMeeting(server: server, name: name))
        do { try m.validate() } catch { throw CLIFailure(message: error.description, code: CLIExit.usage) }
        return m
    }
}
