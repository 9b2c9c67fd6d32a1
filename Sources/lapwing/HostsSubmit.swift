import CLapwing
import Foundation
import LapwingCore
import LapwingEngine
import LapwingJob
import LapwingProtocol

#if canImport(Glibc)
import Glibc
#endif

/// `lapwing submit --hosts H0,H1,...`: one job across machines through their daemons
/// (docs/machines-daemons.md). Rank r goes to host Hr's lapwingd: `local` is this machine's
/// (the usual socket), any other host is reached with `$LAPWING_RSH H lapwing ...` (default
/// `ssh`; `$LAPWING_REMOTE` names the remote command, default `lapwing`), so that each machine's
/// CLI opens its own data and each daemon admits its rank under its own limits. Rank 0 goes
/// first; its host starts the job's ompi-server and publishes it in its job record; the other
/// ranks are then submitted with it. Returns once every rank is queued.
struct HostsSubmit {
    let hosts: [String]
    /// The job's options as given (without --hosts and the client's own), for the other hosts.
    let options: [String]
    let timeout: Double
    let local: ClientOptions

    struct Placed: Codable {
        var host: String
        var job: String
    }

    /// Splits `--hosts`: 2 to `MachineRank.maxSize` names, each a host name, an address or `local`.
    static func parse(_ text: String) throws -> [String] {
        let hosts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:[]@")
        for h in hosts where h.isEmpty || h.utf8.count > 255 || !h.allSatisfy({ allowed.contains($0) }) || h.hasPrefix("-") {
            throw CLIFailure(message: "--hosts \(text): \"\(h)\" is not a host name or address", code: CLIExit.usage)
        }
        guard hosts.count >= 2, hosts.count <= MachineRank.maxSize else {
            throw CLIFailure(message: "--hosts \(text): give 2 to \(MachineRank.maxSize) hosts, comma-separated", code: CLIExit.usage)
        }
        return hosts
    }

    /// The arguments of `lapwing submit` that describe the job, from this command line: all but
    /// --hosts, --json, --watch and --socket (a remote host has its own daemon).
    static func jobOptions(_ arguments: [String]) throws -> [String] {
        var out: [String] = []
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            if a == "--config" || a.hasPrefix("--config=") {
                throw CLIFailure(message: "--config with --hosts: give the job's options on the command line", code: CLIExit.usage)
            }
            if ["--hosts", "--socket", "--mpi-timeout"].contains(a) {
                i += 2
                continue
            }
            if a.hasPrefix("--hosts=") || a.hasPrefix("--socket=") || a.hasPrefix("--mpi-timeout=") || a == "--json" || a == "--watch" {
                i += 1
                continue
            }
            out.append(a)
            i += 1
        }
        return out
    }

    func run() throws -> [Placed] {
        // Ctrl-C while ranks are queued cancels them (below), instead of leaving rank 0 waiting.
        _ = lw_install_stop_handlers()
        let n = hosts.count
        var placed: [Placed] = []
        do {
            let first = try submit(rank: 0, of: n, meeting: MachineMeeting())
            placed.append(first)
            writeError("lapwing: rank 0 of \(n) is job \(first.job) on \(first.host); waiting for its ompi-server\n")
            let meeting = try awaitMeeting(first)
            for r in 1..<n {
                let p = try submit(rank: r, of: n, meeting: meeting)
                placed.append(p)
                writeError("lapwing: rank \(r) of \(n) is job \(p.job) on \(p.host)\n")
            }
        } catch {
            // A job across machines runs whole or not at all: cancel the ranks already queued.
            for p in placed { _ = try? capture(p.host, ["cancel", p.job]) }
            throw error
        }
        return placed
    }

    private func submit(rank: Int, of n: Int, meeting: MachineMeeting) throws -> Placed {
        let host = hosts[rank]
        var args = ["submit", "--json", "--machine-rank", String(rank), "--machine-ranks", String(n), "--mpi-timeout", MachineRank.secondsText(timeout)]
        if let s = meeting.server, let name = meeting.name { args += ["--machine-server", s, "--machine-name", name] }
        let record = try JSONDecoder().decode(JobRecord.self, from: Data(try capture(host, args + options).utf8))
        return Placed(host: host, job: record.id)
    }

    /// Waits until rank 0's job record holds its meeting (its host has loaded the data and
    /// started the ompi-server), or the job ended, or `timeout` passed.
    private func awaitMeeting(_ first: Placed) throws -> MachineMeeting {
        let deadline = monotonicSeconds() + timeout
        while true {
            let r = try JSONDecoder().decode(JobRecord.self, from: Data(try capture(first.host, ["status", "--json", first.job]).utf8))
            if let m = r.machineMeeting { return m }
            if r.state.isFinished {
                throw CLIFailure(message: "rank 0 (job \(first.job) on \(first.host)) ended \(r.state.rawValue) before the others joined\(r.reason.map { ": \($0)" } ?? "")", code: CLIExit.failure)
            }
            if lw_stop_signal() != 0 {
                throw CLIFailure(message: "interrupted while rank 0 (job \(first.job) on \(first.host)) was starting", code: 130)
            }
            if monotonicSeconds() > deadline {
                throw CLIFailure(
                    message: "rank 0 (job \(first.job) on \(first.host)) published no ompi-server within \(MachineRank.secondsText(timeout)) s (it is \(r.state.rawValue)\(r.reason.map { ": \($0)" } ?? ""))",
                    code: CLIExit.failure)
            }
            usleep(300_000)
        }
    }

    /// Runs `lapwing ARGS` for `host` (this process's own binary for `local`, through the
    /// remote shell for another host) and returns its standard output; fails with its error.
    private func capture(_ host: String, _ args: [String]) throws -> String {
        var argv: [String]
        if host == "local" {
            argv = [Bundle.main.executablePath ?? CommandLine.arguments[0]] + args + (local.socket.map { ["--socket", $0] } ?? [])
        } else {
            let env = ProcessInfo.processInfo.environment
            let rsh = (env["LAPWING_RSH"] ?? "ssh").split(separator: " ").map(String.init)
            let remote = (env["LAPWING_REMOTE"] ?? "lapwing").split(separator: " ").map(String.init)
            // ssh joins its arguments into one command line for the remote shell: quote each.
            argv = rsh + [host] + (remote + args).map(Self.shellQuoted)
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: argv[0].contains("/") ? argv[0] : "/usr/bin/env")
        p.arguments = argv[0].contains("/") ? Array(argv.dropFirst()) : argv
        // Standard error goes to a file, so that neither stream can fill while the other is read.
        let errFile = FileManager.default.temporaryDirectory.appendingPathComponent("lapwing-hosts-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        guard FileManager.default.createFile(atPath: errFile.path, contents: nil), let err = FileHandle(forWritingAtPath: errFile.path) else {
            throw CLIFailure(message: "\(errFile.path): cannot create", code: CLIExit.failure)
        }
        defer {
            try? err.close()
            try? FileManager.default.removeItem(at: errFile)
        }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let stderr = (try? Data(contentsOf: errFile)) ?? Data()
        guard p.terminationStatus == 0 else {
            let why = String(decoding: stderr, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            // The remote's own exit status (2 usage, 4 refused...), as a submit here would give it.
            let status = p.terminationReason == .exit && (1...125).contains(p.terminationStatus) ? p.terminationStatus : CLIExit.failure
            throw CLIFailure(message: "\(host): lapwing \(args.first ?? "") failed (exit \(p.terminationStatus)): \(why)", code: status)
        }
        return String(decoding: stdout, as: UTF8.self)
    }

    static func shellQuoted(_ word: String) -> String {
        "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
