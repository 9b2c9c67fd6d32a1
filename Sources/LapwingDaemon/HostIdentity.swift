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

    /// Field 22 of /proc/PID/stat (nil for a zombie).
    static func startTime(of pid: Int32) -> UInt64? {
        ProcessStat.read(pid).flatMap { $0.state == "Z" ? nil : $0.startTime }
    }

    /// Whether this very process still runs (not a zombie, not a newcomer with its pid).
    var isAlive: Bool { HostIdentity.startTime(of: pid) == startTime }
}
