import LapwingCore
import LapwingProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Where a daemon listens and keeps its state (design section 8-9).
public struct DaemonConfig: Sendable, Equatable {
    public enum Mode: String, Sendable { case system, user }

    public var mode: Mode
    /// The control socket.
    public var socketPath: String
    /// Per job: spec, state journal, metrics, model.
    public var stateDirectory: String
    /// The binary that runs job hosts (`<it> job-host`).
    public var hostExecutable: String
    /// Cores the daemon may hand to jobs (its cpuset's physical cores).
    public var cores: Int
    /// What control-socket clients may hold: connections, deadlines, buffered bytes, descriptors
    /// (the environment variables of `ControlLimits.environmentOverrides` change some).
    public var limits = ControlLimits()
    /// Whether a shutdown leaves running jobs training, for the next daemon to re-attach to
    /// (`--keep-jobs`); otherwise it interrupts them.
    public var keepJobsOnExit = false
    /// The configuration file's limits, fair share and retention, and the file to read again
    /// on SIGHUP (nil: none; the defaults hold).
    public var settings = DaemonSettings()
    public var settingsPath: String?
    /// Where each job gets its own control group (systemd's delegated subtree), if anywhere.
    public var jobCgroups: JobCgroups?

    public init(mode: Mode, socketPath: String, stateDirectory: String, hostExecutable: String, cores: Int) {
        self.mode = mode
        self.socketPath = socketPath
        self.stateDirectory = stateDirectory
        self.hostExecutable = hostExecutable
        self.cores = cores
    }

    /// The system service's paths: /run/lapwing/control.sock, /var/lib/lapwing (or systemd's
    /// RUNTIME_DIRECTORY / STATE_DIRECTORY when set).
    public static func system(hostExecutable: String, cores: Int) -> DaemonConfig {
        let run = env("RUNTIME_DIRECTORY") ?? "/run/lapwing"
        let state = env("STATE_DIRECTORY") ?? "/var/lib/lapwing"
        return DaemonConfig(
            mode: .system, socketPath: run + "/control.sock", stateDirectory: state, hostExecutable: hostExecutable,
            cores: cores)
    }

    /// A user's own daemon: $XDG_RUNTIME_DIR/lapwing/control.sock, $XDG_STATE_HOME/lapwing.
    public static func user(hostExecutable: String, cores: Int) throws(LapwingError) -> DaemonConfig {
        DaemonConfig(
            mode: .user, socketPath: try userSocketPath(), stateDirectory: userStateDirectory(),
            hostExecutable: hostExecutable, cores: cores)
    }

    /// The user-mode socket path, as clients find it too.
    public static func userSocketPath() throws(LapwingError) -> String { ControlProtocol.userSocketPath() }

    /// The configuration file a daemon of `mode` reads when --config does not name one.
    public static func defaultSettingsPath(_ mode: Mode) -> String {
        switch mode {
        case .system: return "/etc/lapwing/lapwingd.conf"
        case .user: return (env("XDG_CONFIG_HOME") ?? ((env("HOME") ?? "/tmp") + "/.config")) + "/lapwing/lapwingd.conf"
        }
    }

    static func userStateDirectory() -> String {
        if let state = env("XDG_STATE_HOME") { return state + "/lapwing" }
        return (env("HOME") ?? "/tmp") + "/.local/state/lapwing"
    }

    static func env(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        let s = String(cString: v)
        return s.isEmpty ? nil : s
    }
}

/// Creates a directory and its parents with `mode` (existing ones are left as they are).
public func makeDirectories(_ path: String, mode: mode_t = 0o750) throws(LapwingError) {
    var current = path.hasPrefix("/") ? "" : "."
    for part in path.split(separator: "/") {
        current += "/" + part
        if mkdir(current, mode) != 0 && errno != EEXIST {
            throw LapwingError.system("mkdir", errno: errno, object: current)
        }
    }
}
