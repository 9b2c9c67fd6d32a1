import CLapwing
import Foundation
import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// A listening Unix stream socket (non-blocking; poll `fd` for readable, then `accept()`).
/// Owns its fd; when it bound the path itself, `close()` and deinit also remove the socket file,
/// if it is still the one it created.
public final class UnixListener {
    public private(set) var fd: Int32
    /// The socket's path (nil for an adopted socket whose path is unknown).
    public let path: String?
    private let boundFile: (dev: UInt64, ino: UInt64)?

    /// Listens on `path` with file mode `mode`. An existing socket file is removed only when nobody
    /// listens on it (a connect is refused); a live one throws `busy`, any other file `busy` too.
    public static func bind(path: String, mode: mode_t = 0o660, backlog: Int32 = 64) throws(LapwingError) -> UnixListener {
        var st = stat()
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFSOCK else {
                throw LapwingError(.busy, "\(path): exists and is not a socket", detail: "not removing it")
            }
            let r = lw_unix_connect(path)
            if r >= 0 {
                _ = Glibc.close(r)
                throw LapwingError(.busy, "\(path): another process is listening on it", detail: "is lapwingd already running?")
            }
            guard -r == ECONNREFUSED else {
                throw LapwingError.system("connect (probing a stale socket)", errno: -r, object: path)
            }
            try syscall("unlink", object: path) { unlink(path) }
        }
        let fd = try shimCall("bind/listen", object: path) { lw_unix_listen(path, mode, backlog) }
        var bound = stat()
        let file: (UInt64, UInt64)? = stat(path, &bound) == 0 ? (UInt64(bound.st_dev), UInt64(bound.st_ino)) : nil
        return UnixListener(fd: fd, path: path, boundFile: file)
    }

    /// Adopts a listening socket (socket activation). Throws `invalid_argument` when `fd` is not a
    /// listening Unix stream socket. Makes it non-blocking and close-on-exec.
    public convenience init(adoptingFD fd: Int32, path: String? = nil) throws(LapwingError) {
        let what = "fd \(fd)"
        let r = try shimCall("getsockopt", object: what) { lw_is_unix_listener(fd) }
        guard r == 1 else { throw LapwingError(.invalidArgument, "\(what): not a listening Unix stream socket") }
        try shimCall("fcntl(O_NONBLOCK)", object: what) { lw_set_nonblocking(fd, 1) }
        self.init(fd: fd, path: path, boundFile: nil)
    }

    /// The socket systemd passed (LISTEN_PID is this process, LISTEN_FDS ≥ 1: fd 3), or nil when
    /// not socket-activated. Unsets LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES so children do not see them.
    public static func fromSystemd() throws(LapwingError) -> UnixListener? {
        let env = ProcessInfo.processInfo.environment
        defer {
            unsetenv("LISTEN_PID")
            unsetenv("LISTEN_FDS")
            unsetenv("LISTEN_FDNAMES")
        }
        guard let pid = env["LISTEN_PID"].flatMap({ Int32($0) }), pid == getpid(),
            let count = env["LISTEN_FDS"].flatMap({ Int($0) }), count >= 1
        else { return nil }
        return try UnixListener(adoptingFD: 3)
    }

    private init(fd: Int32, path: String?, boundFile: (dev: UInt64, ino: UInt64)?) {
        self.fd = fd
        self.path = path
        self.boundFile = boundFile
    }

    deinit { close() }

    /// A waiting connection (blocking, close-on-exec), or nil when none is waiting.
    public func accept() throws(LapwingError) -> UnixConnection? {
        let r = lw_unix_accept(fd)
        if r >= 0 {
            let c = UnixConnection(adopting: r, name: path ?? "control socket")
            if let cred = try? c.peerCredentials() { c.name = "client pid \(cred.pid) uid \(cred.uid)" }
            return c
        }
        switch -r {
        case EAGAIN, EWOULDBLOCK: return nil
        // The client gave up before we took it, or a per-process limit: nothing to do for it now.
        case ECONNABORTED, EPROTO: return nil
        default: throw LapwingError.system("accept", errno: -r, object: path ?? "control socket")
        }
    }

    /// Stops listening; removes the socket file this listener created, if it is still there.
    public func close() {
        guard fd >= 0 else { return }
        if let path, let boundFile {
            var st = stat()
            if lstat(path, &st) == 0, UInt64(st.st_dev) == boundFile.dev, UInt64(st.st_ino) == boundFile.ino {
                unlink(path)
            }
        }
        _ = Glibc.close(fd)
        fd = -1
    }
}
