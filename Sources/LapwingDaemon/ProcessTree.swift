import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The fields of /proc/PID/stat that the daemon reads.
struct ProcessStat {
    var state: Character
    var parent: Int32
    /// User and system CPU time (fields 14 and 15), in seconds.
    var cpuSeconds: Double
    /// Field 22: clock ticks after boot.
    var startTime: UInt64

    /// /proc/PID/stat, parsed after the command name (which may hold spaces and ')').
    static func read(_ pid: Int32) -> ProcessStat? {
        guard pid > 0, let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        let f = text[text.index(after: close)...].split(separator: " ")
        // f[0] is field 3 (state), f[1] field 4 (ppid), f[11] and f[12] fields 14 and 15, f[19] field 22.
        guard f.count > 19, let state = f[0].first, let parent = Int32(f[1]), let user = Double(f[11]),
            let system = Double(f[12]), let start = UInt64(f[19])
        else { return nil }
        return ProcessStat(
            state: state, parent: parent, cpuSeconds: (user + system) / Double(sysconf(Int32(_SC_CLK_TCK))), startTime: start)
    }
}

/// Every process at one moment (one pass over /proc), to find those under a job host: its
/// workers, averager and their children.
struct ProcessTree {
    var stats: [Int32: ProcessStat] = [:]

    static func scan() -> ProcessTree {
        var tree = ProcessTree()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(name), let s = ProcessStat.read(pid) else { continue }
            tree.stats[pid] = s
        }
        return tree
    }

    /// The member of `roots` that `pid` is or descends from (nil: none).
    func root(of pid: Int32, among roots: Set<Int32>) -> Int32? {
        var p = pid
        // Job trees are shallow; the bound only guards against a loop in a changing /proc.
        for _ in 0..<64 {
            if roots.contains(p) { return p }
            guard p > 1, let up = stats[p]?.parent else { return nil }
            p = up
        }
        return nil
    }

    /// The processes under `root`, itself included.
    func members(under root: Int32) -> [Int32] {
        stats.keys.filter { self.root(of: $0, among: [root]) != nil }
    }
}

/// The memory a set of processes holds: the sum of their proportional set sizes
/// (/proc/PID/smaps_rollup, Pss), so that pages they share, such as a job's arena, count once.
enum ProcessMemory {
    static func proportionalBytes(of pids: [Int32]) -> Int? {
        var total = 0
        var any = false
        for pid in pids {
            guard let text = try? String(contentsOfFile: "/proc/\(pid)/smaps_rollup", encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") where line.hasPrefix("Pss:") {
                if let kb = Int(line.split(separator: " ").dropFirst().first ?? "") {
                    total += kb * 1024
                    any = true
                }
            }
        }
        return any ? total : nil
    }
}
