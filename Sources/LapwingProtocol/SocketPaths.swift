#if canImport(Glibc)
import Glibc
#endif

extension ControlProtocol {
    /// The system daemon's socket.
    public static let systemSocketPath = "/run/lapwing/control.sock"

    /// Where a user's own daemon listens, as the daemon and its clients both find it:
    /// `$XDG_RUNTIME_DIR/lapwing/control.sock`, or without a runtime directory (no login
    /// session) a private directory under /tmp named for the uid.
    public static func userSocketPath() -> String {
        if let v = getenv("XDG_RUNTIME_DIR"), v.pointee != 0 { return String(cString: v) + "/lapwing/control.sock" }
        return "/tmp/lapwing-\(getuid())/control.sock"
    }
}
