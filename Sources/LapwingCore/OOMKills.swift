import Foundation

/// The kernel's OOM kills in this process's memory cgroup (cgroup v2 `memory.events`, or v1
/// `memory.oom_control`: both have an `oom_kill N` line), so that a job host killed by SIGKILL
/// can be told apart as the OOM killer's victim.
public enum OOMKills {
    /// The count now; nil where no memory controller says.
    public static func count() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n")
        var files: [String] = []
        if let v2 = lines.first(where: { $0.hasPrefix("0::") }) { files.append("/sys/fs/cgroup" + v2.dropFirst(3) + "/memory.events") }
        if let v1 = lines.first(where: { $0.split(separator: ":").dropFirst().first == "memory" }) {
            let path = v1.split(separator: ":", maxSplits: 2).last.map(String.init) ?? "/"
            files.append("/sys/fs/cgroup/memory" + path + "/memory.oom_control")
        }
        for file in files {
            guard let events = try? String(contentsOfFile: file, encoding: .utf8) else { continue }
            for l in events.split(separator: "\n") where l.hasPrefix("oom_kill ") {
                return Int(l.dropFirst("oom_kill ".count))
            }
        }
        return nil
    }
}
