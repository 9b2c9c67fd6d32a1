import Foundation

/// The kernel's OOM kills in this process's cgroup (cgroup v2 `memory.events`, `oom_kill`), so
/// that a job host killed by SIGKILL can be told apart as the OOM killer's victim.
enum OOMKills {
    /// The count now; nil where there is no cgroup v2 memory controller to ask.
    static func count() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("0::") })
        else { return nil }
        let path = "/sys/fs/cgroup" + line.dropFirst(3) + "/memory.events"
        guard let events = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for l in events.split(separator: "\n") where l.hasPrefix("oom_kill ") {
            return Int(l.dropFirst("oom_kill ".count))
        }
        return nil
    }
}
