import Foundation
import LapwingTopology

#if canImport(Glibc)
import Glibc
#endif

/// The cores that processes other than Lapwing's keep busy ([Scheduling] CountOtherLoad = yes):
/// the busy CPU time of the CPUs the daemon may use (/proc/stat) over an interval, less the CPU time of Lapwing's own
/// processes in it (each running job's control group, cpu.stat, when jobs have their own; else
/// the processes under each job host, /proc/PID/stat; and the daemon itself), smoothed with a
/// time constant of `timeConstant` seconds. Admission then leaves `busyCores` cores out.
struct OtherLoad: Sendable {
    /// One reading: when, the machine's busy CPU seconds, and Lapwing's own CPU seconds by
    /// source (a job's control group, or one process named by pid and start time).
    struct Reading: Sendable {
        var time: Double
        var busy: Double
        var own: [String: Double]
    }

    static let timeConstant = 3.0

    /// The smoothed load of other processes, in cores (nil before the first interval).
    private(set) var cores: Double?
    private var last: Reading?

    /// Cores counted as busy: the load rounded to the nearest whole core (a core is taken when
    /// other processes keep it busy more than half the time), at most `of`.
    func busyCores(of total: Int) -> Int? {
        cores.map { min(total, max(0, Int($0.rounded()))) }
    }

    /// Adds a reading. An interval in which one of Lapwing's sources went away (a job ended, a
    /// worker was replaced) is skipped: its last CPU time is unknown, and counting it as other
    /// load would hold jobs back for nothing. A source new in the interval counts whole (it
    /// started within it).
    mutating func add(_ now: Reading) {
        defer { last = now }
        guard let last, now.time - last.time > 0.2 else { return }
        guard last.own.keys.allSatisfy({ now.own[$0] != nil }) else { return }
        var own = 0.0
        for (key, seconds) in now.own { own += max(0, seconds - (last.own[key] ?? 0)) }
        let interval = now.time - last.time
        let raw = max(0, (now.busy - last.busy - own) / interval)
        guard let cores else {
            self.cores = raw
            return
        }
        self.cores = cores + (1 - exp(-interval / Self.timeConstant)) * (raw - cores)
    }

    /// Forgets what it measured (CountOtherLoad turned off).
    mutating func reset() {
        cores = nil
        last = nil
    }

    // MARK: Reading the kernel's counters

    /// The busy CPU seconds since boot of `cpus` (the CPUs the daemon may use: what other
    /// processes do elsewhere takes nothing from its jobs), from /proc/stat's per-CPU lines:
    /// every column but idle and iowait (guest time is already in user).
    static func busySeconds(of cpus: Set<Int>) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        var ticks = 0.0
        var seen = 0
        for line in text.split(separator: "\n") where line.hasPrefix("cpu") {
            let f = line.split(separator: " ")
            guard let cpu = Int(f[0].dropFirst(3)), cpus.contains(cpu) else { continue }
            let t = f.dropFirst().compactMap { Double($0) }
            guard t.count >= 8 else { return nil }
            // user nice system idle iowait irq softirq steal
            ticks += t[0] + t[1] + t[2] + t[5] + t[6] + t[7]
            seen += 1
        }
        return seen == 0 ? nil : ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// CPU seconds of the processes under `roots` (their descendants included) and of the daemon
    /// itself, by "pid:starttime", from one pass over /proc.
    static func processSeconds(under roots: Set<Int32>) -> [String: Double] {
        let tree = ProcessTree.scan()
        let me = getpid()
        var out: [String: Double] = [:]
        for (pid, s) in tree.stats where pid == me || tree.root(of: pid, among: roots) != nil {
            out["\(pid):\(s.startTime)"] = s.cpuSeconds
        }
        return out
    }
}

extension JobManager {
    /// Takes one reading of the other processes' load while CountOtherLoad is on (the scheduler
    /// calls this every second), and forgets it while it is off.
    public func measureOtherLoad() {
        guard settings.withLock({ $0.countOtherLoad }) else {
            otherLoad.withLock { $0.reset() }
            return
        }
        let (jobs, hosts): ([String], Set<Int32>) = state.withLock { s in
            (Array(s.hosts.keys) + Array(s.detached.keys), Set(s.hosts.values.map(\.pid)).union(s.detached.values.map(\.pid)))
        }
        guard let cpus = try? currentAffinity(), let busy = OtherLoad.busySeconds(of: Set(cpus)) else { return }
        var own: [String: Double] = [:]
        if let groups = config.jobCgroups {
            for id in jobs { own["job \(id)"] = groups.cpuSeconds(of: id) }
            own["lapwingd"] = ProcessStat.read(getpid())?.cpuSeconds
        } else {
            own = OtherLoad.processSeconds(under: hosts)
        }
        let reading = OtherLoad.Reading(time: ProcessInfo.processInfo.systemUptime, busy: busy, own: own)
        otherLoad.withLock { $0.add(reading) }
    }

    /// The smoothed load of other processes, in cores (nil while CountOtherLoad is off or before
    /// its first interval).
    public var otherLoadCores: Double? { otherLoad.withLock { $0.cores } }
}
