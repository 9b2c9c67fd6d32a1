import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A job host named by its pid and its start time, so that a pid reused by another process is
/// never taken for the host (a daemon that restarts re-attaches to hosts by both).
struct HostIdentity: Sendable, Equatable {
    let pid: Int32
    let startTime: UInt64

    /// The identity of the running process `pid` (nil if there is none).
    static func of(_ pid: Int32) -> HostIdentity? {
        startTime(of: pid).map { HostIdentity(pid: pid, startTime: $0) }
    }

    /// Field 22 of /proc/PID/stat (after the command name, which may hold spaces and ')').
    static func startTime(of pid: Int32) -> UInt64? {
        guard pid > 0, let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state); field 22 is fields[19].
        guard fields.count > 19, fields[0] != "Z" else { return nil }
        return UInt64(fields[19])
    }

    /// Whether this very process still runs (not a zombie, not a newcomer with its pid).
    var isAlive: Bool { HostIdentity.startTime(of: pid) == startTime }
}
