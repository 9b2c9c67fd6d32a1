import CLapwing

#if canImport(Glibc)
import Glibc
#endif

/// systemd's notify protocol without libsystemd: newline-separated `KEY=VALUE` fields sent as
/// one datagram to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or an abstract name
/// when it starts with '@').
public struct SystemdNotifier: Sendable {
    public let socketPath: String

    public init(socketPath: String) { self.socketPath = socketPath }

    /// The notifier of $NOTIFY_SOCKET, or nil when the process does not run under systemd's notify.
    public static func fromEnvironment() -> SystemdNotifier? {
        guard let p = getenv("NOTIFY_SOCKET"), p.pointee != 0 else { return nil }
        return SystemdNotifier(socketPath: String(cString: p))
    }

    /// Sends the fields as one datagram (with `fds` attached as SCM_RIGHTS, for FDSTORE=1).
    public func notify(_ fields: [(String, String)], fds: [Int32] = []) throws(LapwingError) {
        let text = fields.map { "\($0)=\($1)" }.joined(separator: "\n") + "\n"
        let fd = try syscall("socket", object: "NOTIFY_SOCKET \(socketPath)") {
            socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        var name = Array(socketPath.utf8)
        let abstract = name.first == UInt8(ascii: "@")
        if abstract { name[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard name.count < capacity else {
            throw LapwingError(.invalidArgument, "NOTIFY_SOCKET \(socketPath): longer than \(capacity - 1) bytes")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, b) in name.enumerated() { p[i] = b }
        }
        // Abstract names are exactly their bytes; paths end with a NUL.
        let length = socklen_t(MemoryLayout<sa_family_t>.size + name.count + (abstract ? 0 : 1))
        let bytes = Array(text.utf8)
        // Connected, so that one sendmsg can carry the descriptors.
        let connected = withUnsafePointer(to: &addr) { a in
            a.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in connect(fd, sa, length) }
        }
        if connected < 0 { throw LapwingError.system("connect", errno: errno, object: "NOTIFY_SOCKET \(socketPath)") }
        let sent = bytes.withUnsafeBytes { b in
            fds.withUnsafeBufferPointer { f in lw_send_with_fds(fd, b.baseAddress, b.count, f.baseAddress, Int32(f.count)) }
        }
        if sent < 0 { throw LapwingError.system("sendmsg", errno: Int32(-sent), object: "NOTIFY_SOCKET \(socketPath)") }
    }

    /// Keeps `fds` in systemd's file descriptor store under `name` (FDSTORE=1): systemd hands
    /// them back to the next process of the service, after a restart or a crash, in
    /// $LISTEN_FDS with the name in $LISTEN_FDNAMES. Needs FileDescriptorStoreMax= in the unit.
    public func store(_ fds: [Int32], name: String) throws(LapwingError) {
        try notify([("FDSTORE", "1"), ("FDNAME", name)], fds: fds)
    }

    /// Drops the descriptors stored under `name`.
    public func removeStored(name: String) throws(LapwingError) {
        try notify([("FDSTOREREMOVE", "1"), ("FDNAME", name)])
    }

    public func ready(status: String) throws(LapwingError) { try notify([("READY", "1"), ("STATUS", status)]) }
    public func status(_ text: String) throws(LapwingError) { try notify([("STATUS", text)]) }
    public func watchdog() throws(LapwingError) { try notify([("WATCHDOG", "1")]) }
    public func stopping() throws(LapwingError) { try notify([("STOPPING", "1")]) }

    /// $WATCHDOG_USEC as a duration, when it is meant for this process ($WATCHDOG_PID unset or ours).
    public static func watchdogInterval() -> Duration? {
        watchdogInterval(usec: env("WATCHDOG_USEC"), pid: env("WATCHDOG_PID"), me: getpid())
    }

    static func watchdogInterval(usec: String?, pid: String?, me: pid_t) -> Duration? {
        guard let usec, let n = UInt64(usec), n > 0 else { return nil }
        if let pid, Int32(pid) != me { return nil }
        return .microseconds(n)
    }

    /// The sockets systemd passed (socket activation: $LISTEN_FDS from fd 3, when $LISTEN_PID is
    /// us). They are made close-on-exec and the variables unset, as sd_listen_fds(1) does.
    public static func listenFDs() -> [Int32] { namedListenFDs().map(\.fd) }

    /// `listenFDs()` with each descriptor's name ($LISTEN_FDNAMES, colon-separated: a socket
    /// unit's FileDescriptorName=, or the FDNAME= it was stored under; "unknown" without one).
    public static func namedListenFDs() -> [(fd: Int32, name: String)] {
        let fds = listenFDs(count: env("LISTEN_FDS"), pid: env("LISTEN_PID"), me: getpid())
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let names = (env("LISTEN_FDNAMES") ?? "").split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        unsetenv("LISTEN_FDS")
        unsetenv("LISTEN_PID")
        unsetenv("LISTEN_FDNAMES")
        return fds.enumerated().map { (fd: $1, name: $0 < names.count && !names[$0].isEmpty ? names[$0] : "unknown") }
    }

    static func listenFDs(count: String?, pid: String?, me: pid_t) -> [Int32] {
        guard let count, let n = Int32(count), n > 0, let pid, Int32(pid) == me else { return [] }
        return (0..<n).map { 3 + $0 }
    }

    private static func env(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        return String(cString: v)
    }
}
