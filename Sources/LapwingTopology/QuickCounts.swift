import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Counts a daemon needs at start, read from sysfs without loading the hwloc topology (which
/// can take tens of seconds on some VMs while another process changes its affinity; the daemon
/// must serve its socket first).
public enum QuickCounts {
    /// Physical cores among the CPUs this process may run on: distinct (package, core) pairs of
    /// /sys/devices/system/cpu/cpuN/topology; nil if sysfs says nothing.
    public static func allowedCores() -> Int? {
        guard let cpus = try? currentAffinity() else { return nil }
        var cores = Set<String>()
        for cpu in cpus {
            let dir = "/sys/devices/system/cpu/cpu\(cpu)/topology/"
            let core = (try? String(contentsOfFile: dir + "core_id", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            let package = (try? String(contentsOfFile: dir + "physical_package_id", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            cores.insert("\(package ?? "?"):\(core ?? "cpu\(cpu)")")
        }
        return cores.isEmpty ? nil : cores.count
    }

    /// NUMA nodes that have CPUs (/sys/devices/system/node/has_cpu, e.g. "0-3"; else the nodes
    /// online): the nodes a job's workers and replicas can go to. A memory-only node (CXL, HBM)
    /// takes no replica. nil if sysfs says nothing.
    public static func numaNodes() -> Int? {
        for file in ["has_cpu", "online"] {
            if let text = try? String(contentsOfFile: "/sys/devices/system/node/" + file, encoding: .utf8) { return count(ranges: text) }
        }
        return nil
    }

    /// The members of a kernel list such as "0-3,5,7-8".
    public static func count(ranges text: String) -> Int? {
        var n = 0
        for part in text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",") {
            let ends = part.split(separator: "-").map { Int($0) }
            guard let lo = ends.first ?? nil else { return nil }
            let hi = ends.count == 2 ? (ends[1] ?? lo) : lo
            guard hi >= lo else { return nil }
            n += hi - lo + 1
        }
        return n == 0 ? nil : n
    }
}
