import Foundation
import LapwingCore
import LapwingDaemon
import LapwingEngine
import LapwingTopology
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// lapwingd: the Lapwing daemon (design sections 8-10). A ServiceGroup of the control-socket
/// listener, the scheduler, the job supervisor and the systemd notifier; SIGTERM shuts them down
/// in reverse order within a bounded time. `lapwingd job-host` is the job host it launches.
@main
struct LapwingD {
    static func main() async {
        let args = Array(CommandLine.arguments.dropFirst())
        if args.first == "job-host" {
            exit(JobHost.runFromStandardIO())
        }
        var mode = DaemonConfig.Mode.system
        var socketOverride: String?
        var stateOverride: String?
        var socketMode: mode_t?
        var it = args.makeIterator()
        while let a = it.next() {
            switch a {
            case "--user": mode = .user
            case "--system": mode = .system
            case "--socket": socketOverride = it.next()
            case "--state-dir": stateOverride = it.next()
            case "--socket-mode":
                guard let m = it.next().flatMap({ mode_t($0, radix: 8) }), m <= 0o777 else {
                    writeError("lapwingd: --socket-mode needs an octal mode such as 0660\n")
                    exit(2)
                }
                socketMode = m
            case "--version":
                print("lapwingd \(LapwingVersion.string)")
                return
            case "--help", "-h":
                print(
                    """
                    usage: lapwingd [--user | --system] [--socket PATH] [--state-dir DIR] [--socket-mode MODE]
                      --system     /run/lapwing/control.sock, /var/lib/lapwing (default; systemd's
                                   RUNTIME_DIRECTORY and STATE_DIRECTORY win when set)
                      --user       $XDG_RUNTIME_DIR/lapwing/control.sock, $XDG_STATE_HOME/lapwing
                      --socket-mode  the socket's permissions (default 0660 system, 0600 user)
                    Socket activation: a socket passed by systemd (LISTEN_FDS) is used as is.
                    """)
                return
            default:
                writeError("lapwingd: unknown argument '\(a)' (see --help)\n")
                exit(2)
            }
        }
        var logger = Logger(label: "lapwingd")
        logger.logLevel = .info
        do {
            let exe = currentExecutablePath()
            let cores = (try? Topology.current().cores.count) ?? 1
            var config =
                mode == .user
                ? try DaemonConfig.user(hostExecutable: exe, cores: cores)
                : DaemonConfig.system(hostExecutable: exe, cores: cores)
            if let socketOverride { config.socketPath = socketOverride }
            if let stateOverride { config.stateDirectory = stateOverride }
            let log = logger
            let manager = try JobManager(config: config) { log.info("\($0)") }
            let activated = SystemdNotifier.listenFDs().first
            let server = try ControlServer(
                config: config, manager: manager, socketMode: socketMode ?? (mode == .user ? 0o600 : 0o660),
                activated: activated
            ) { log.info("\($0)") }
            let daemon = Daemon(config: config, manager: manager, server: server, logger: logger)
            try await daemon.run()
        } catch {
            writeError("lapwingd: \(error)\n")
            exit(1)
        }
    }
}

enum LapwingVersion {
    static let string = "0.1.0"
}

