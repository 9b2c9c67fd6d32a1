import ArgumentParser
import CLapwing
import Foundation
import LapwingCore
import LapwingDaemon
import LapwingEngine
import LapwingJob
import LapwingTopology
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// lapwingd: the Lapwing daemon (design sections 8-10). A ServiceGroup of the control-socket
/// listener, the scheduler, the job supervisor, the systemd notifier and the signal watcher;
/// SIGTERM shuts them down in reverse order within a bounded time. `lapwingd job-host` is the
/// job host it launches (an internal entry point, not parsed as options).
@main
struct LapwingD: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lapwingd",
        abstract: "The Lapwing daemon: queues and runs training jobs for the clients of its control socket.",
        discussion: """
            System mode (the default) listens on /run/lapwing/control.sock and keeps state in /var/lib/lapwing
            (systemd's RUNTIME_DIRECTORY and STATE_DIRECTORY win when set); user mode on
            $XDG_RUNTIME_DIR/lapwing/control.sock with state in $XDG_STATE_HOME/lapwing. A socket passed by
            systemd (LISTEN_FDS) is used as it is. SIGTERM and SIGINT stop the daemon (running jobs are
            interrupted cleanly); SIGHUP reads the configuration file again (--config).
            \(ExitStatus.summary)
            """,
        version: LapwingVersion.string)

    enum Mode: String, EnumerableFlag {
        case system, user

        static func help(for value: Mode) -> ArgumentHelp? {
            switch value {
            case .system: "Serve the machine: /run/lapwing/control.sock, /var/lib/lapwing (default)."
            case .user: "Serve the calling user: $XDG_RUNTIME_DIR/lapwing/control.sock, $XDG_STATE_HOME/lapwing."
            }
        }
    }

    @Flag(exclusivity: .exclusive) var mode: Mode = .system

    @Option(help: ArgumentHelp("The control socket's path (default: the mode's).", valueName: "path"))
    var socket: String?

    @Option(name: .customLong("state-dir"), help: ArgumentHelp("The state directory (default: the mode's).", valueName: "dir"))
    var stateDirectory: String?

    @Option(
        name: .customLong("socket-mode"),
        help: ArgumentHelp("The socket's permissions, in octal (default: 0660 system, 0600 user).", valueName: "mode"))
    var socketMode: String?

    @Flag(
        name: .customLong("keep-jobs"),
        help: ArgumentHelp(
            "On SIGTERM, leave running jobs training: the next daemon re-attaches to them (the systemd unit's choice, with KillMode=process). Without it, stopping the daemon interrupts them."))
    var keepJobs = false

    @Option(
        help: ArgumentHelp(
            "The configuration file: limits per user and group, fair share, retention (default: /etc/lapwing/lapwingd.conf, or $XDG_CONFIG_HOME/lapwing/lapwingd.conf in user mode; a default one that does not exist means the defaults). SIGHUP reads it again.",
            valueName: "file"))
    var config: String?

    @Option(
        name: .customLong("metrics-address"),
        help: ArgumentHelp(
            "Serve Prometheus metrics at http://HOST:PORT/metrics, on a loopback address only (default: off; under systemd, enable lapwingd-metrics.socket instead).",
            valueName: "host:port"))
    var metricsAddress: String?

    @Option(
        name: .customLong("job-cgroups"),
        help: ArgumentHelp(
            "Where each job gets its own control group: auto (under the service's group when systemd delegated it, Delegate=yes), off, or a cgroup v2 directory the daemon may write.",
            valueName: "auto|off|dir"))
    var jobCgroups = "auto"

    func validate() throws {
        if jobCgroups != "auto", jobCgroups != "off", !jobCgroups.hasPrefix("/") {
            throw ValidationError("--job-cgroups \(jobCgroups): needs auto, off or an absolute path")
        }
        for (name, value) in [("--socket", socket), ("--state-dir", stateDirectory), ("--config", config)] {
            if let value, value.isEmpty || value.utf8.contains(0) { throw ValidationError("\(name): needs a path") }
        }
        if let socketMode, parsedSocketMode == nil {
            throw ValidationError("--socket-mode \(socketMode): needs an octal mode from 0 to 0777, such as 0660")
        }
    }

    var parsedSocketMode: mode_t? {
        socketMode.flatMap { mode_t($0, radix: 8) }.flatMap { $0 <= 0o777 ? $0 : nil }
    }

    /// `lapwingd job-host` runs a job host; any other command line is the daemon's.
    static func main() async {
        if CommandLine.arguments.dropFirst().first == "job-host" {
            Foundation.exit(JobHost.runFromStandardIO())
        }
        do {
            var command = try parseAsRoot()
            if let daemon = command as? LapwingD {
                try await daemon.run()
            } else {
                try command.run()
            }
        } catch {
            // Refused command lines exit 2 as the table says (the parser's own default is 64).
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(ExitStatus.usage)
            }
            exit(withError: error)
        }
    }

    func run() async throws {
        // Under systemd, straight into the journal with structured fields; plain lines otherwise.
        let journal = JournalLogHandler.stderrIsJournal()
        LoggingSystem.bootstrap { label in
            journal ? JournalLogHandler(identifier: "lapwingd") as any LogHandler : StreamLogHandler.standardError(label: label)
        }
        var logger = Logger(label: "lapwingd")
        logger.logLevel = .info
        do {
            let exe = currentExecutablePath()
            let cores = QuickCounts.allowedCores() ?? 1
            var config =
                mode == .user
                ? try DaemonConfig.user(hostExecutable: exe, cores: cores)
                : DaemonConfig.system(hostExecutable: exe, cores: cores)
            if let socket { config.socketPath = socket }
            if let stateDirectory { config.stateDirectory = stateDirectory }
            config.keepJobsOnExit = keepJobs
            // The configuration file: one named here must exist; the default one may not.
            let settingsPath = self.config ?? DaemonConfig.defaultSettingsPath(mode == .user ? .user : .system)
            config.settingsPath = settingsPath
            if self.config != nil || access(settingsPath, F_OK) == 0 {
                config.settings = try DaemonSettings.read(settingsPath)
            }
            switch jobCgroups {
            case "auto": config.jobCgroups = JobCgroups.delegated()
            case "off": config.jobCgroups = nil
            default: config.jobCgroups = try JobCgroups.checked(root: jobCgroups)
            }
            let log = logger
            if let groups = config.jobCgroups { log.info("one control group per job, under \(groups.root)") }
            // From systemd: the activated listening socket, and the jobs' data descriptors kept
            // in its store across a restart of the service.
            let inherited = SystemdNotifier.namedListenFDs()
            let activated = inherited.first { lw_is_unix_listener($0.fd) == 1 }?.fd
            let jobLog: @Sendable (String) -> Void = { message in
                let (level, fields) = JobLogFields.metadata(for: message)
                log.log(level: level, "\(message)", metadata: fields)
            }
            // The metrics socket: systemd's (lapwingd-metrics.socket), else --metrics-address.
            var metricsFD = inherited.first { $0.name == "metrics" && lw_is_tcp_listener($0.fd) == 1 }?.fd
            if metricsFD == nil, let metricsAddress { metricsFD = try MetricsServer.listen(metricsAddress) }
            let manager = try JobManager(
                config: config, inherited: inherited.filter { $0.fd != activated && $0.fd != metricsFD }, log: jobLog)
            if let metricsFD {
                MetricsServer(listener: metricsFD, manager: manager).start()
                log.info("metrics at http://\(metricsAddress ?? "the lapwingd-metrics socket")/metrics")
            }
            let server = try ControlServer(
                config: config, manager: manager, socketMode: parsedSocketMode ?? (mode == .user ? 0o600 : 0o660),
                activated: activated, log: jobLog)
            let daemon = Daemon(config: config, manager: manager, server: server, logger: logger)
            try await daemon.run()
        } catch let error as LapwingError {
            writeError("lapwingd: \(error)\n")
            throw ExitCode(ExitStatus.of(error.code))
        } catch {
            writeError("lapwingd: \(error)\n")
            throw ExitCode(ExitStatus.failure)
        }
    }
}

enum LapwingVersion {
    static let string = "0.1.0"
}
