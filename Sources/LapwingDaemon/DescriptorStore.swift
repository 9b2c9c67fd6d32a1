import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// The jobs' data descriptors kept in systemd's file descriptor store (FDSTORE=1), so that a
/// daemon restarted by systemd (a restart, an upgrade, a crash) gets them back: queued jobs stay
/// queued, and a re-attached job's host can still be started again from its checkpoint. Each
/// descriptor is stored under `job.<id>.<role>`. Without systemd's notify socket it does
/// nothing.
struct DescriptorStore: Sendable {
    let notifier: SystemdNotifier?
    let log: @Sendable (String) -> Void

    static func name(_ id: String, _ role: String) -> String { "job.\(id).\(role)" }

    func keep(_ id: String, _ files: [(role: String, fd: Int32)]) {
        guard let notifier else { return }
        for f in files {
            do throws(LapwingError) { try notifier.store([f.fd], name: Self.name(id, f.role)) } catch {
                log("job \(id): its \(f.role) file is not in systemd's descriptor store: \(error)")
            }
        }
    }

    func drop(_ id: String, roles: [String]) {
        guard let notifier else { return }
        for role in roles { try? notifier.removeStored(name: Self.name(id, role)) }
    }

    /// The descriptors systemd handed back, by job (names not of this form are left out).
    static func byJob(_ inherited: [(fd: Int32, name: String)]) -> [String: [(role: String, fd: Int32)]] {
        var jobs: [String: [(role: String, fd: Int32)]] = [:]
        for (fd, name) in inherited where name.hasPrefix("job.") {
            let rest = name.dropFirst(4)
            guard let dot = rest.firstIndex(of: ".") else { continue }
            jobs[String(rest[..<dot]), default: []].append((String(rest[rest.index(after: dot)...]), fd))
        }
        return jobs
    }
}
