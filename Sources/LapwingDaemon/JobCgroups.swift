import Foundation
import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// One control group per job, inside the cgroup that systemd delegated to the daemon's service
/// (`Delegate=yes`): `<service cgroup>/job-<id>` holds the job's host and, since children follow
/// their parent, every worker and averager it forks. `systemctl status lapwingd` shows one
/// group per job; each group's `cpu.stat` is the job's CPU time; and when a job ends, whatever
/// is left in its group is killed (`cgroup.kill`) before the group is removed, so no process of
/// a job outlives it.
///
/// Why delegation and not a transient scope per job (`StartTransientUnit` over D-Bus): the
/// system daemon runs as the unprivileged user `lapwing`, and systemd lets only root or a polkit
/// grant of `org.freedesktop.systemd1.manage-units` start units; systemd passes no unit name to
/// polkit for transient units, so that grant could not be narrowed to `lapwing-job-*` and would
/// let the `lapwing` user start or stop any unit on the machine. A delegated subtree needs no
/// privilege at all (slurmd places its jobs the same way). No controllers are enabled in the
/// subtree: systemd puts a restarted daemon into the service's own group, which cgroup v2
/// forbids once that group hands controllers to its children; CPU time (`cpu.stat`) is kept for
/// every group regardless.
public struct JobCgroups: Sendable, Equatable {
    /// The delegated group, e.g. /sys/fs/cgroup/system.slice/lapwingd.service.
    public let root: String

    public init(root: String) { self.root = root }

    /// The daemon's own group when systemd delegated it (a service with `Delegate=yes`: its
    /// group on the cgroup v2 hierarchy is ours and writable); nil otherwise, e.g. a
    /// daemon started from a shell, where jobs stay in the daemon's group.
    public static func delegated() -> JobCgroups? {
        guard getenv("INVOCATION_ID") != nil, let relative = ownGroup(), relative.hasSuffix(".service") else {
            return nil
        }
        // The unified hierarchy: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid system.
        guard let mount = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"].first(where: {
            access($0 + "/cgroup.controllers", F_OK) == 0
        }) else { return nil }
        let root = mount + relative
        var st = stat()
        guard stat(root, &st) == 0, st.st_uid == getuid(), access(root + "/cgroup.procs", W_OK) == 0 else {
            return nil
        }
        return JobCgroups(root: root)
    }

    /// A group given by path (`lapwingd --job-cgroups DIR`): it must be a cgroup v2 directory
    /// that the daemon may write.
    public static func checked(root: String) throws(LapwingError) -> JobCgroups {
        // Only a cgroup v2 group has cgroup.controllers.
        guard access(root + "/cgroup.controllers", F_OK) == 0 else {
            throw LapwingError(.invalidArgument, "--job-cgroups \(root): not a cgroup v2 directory (no cgroup.controllers)")
        }
        guard access(root + "/cgroup.procs", W_OK) == 0 else {
            throw LapwingError.system("access", errno: errno, object: root + "/cgroup.procs")
        }
        return JobCgroups(root: root)
    }

    /// This process's group on the unified hierarchy ("0::/system.slice/lapwingd.service").
    static func ownGroup() -> String? {
        guard let text = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("0::") {
            return String(line.dropFirst(3))
        }
        return nil
    }

    public func path(of job: String) -> String { root + "/job-" + job }

    /// The group's path as systemd and /proc/PID/cgroup name it (relative to the unified
    /// hierarchy's mount: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid system).
    public func unitPath(of job: String) -> String {
        let full = path(of: job)
        for mount in ["/sys/fs/cgroup/unified/", "/sys/fs/cgroup/"] where full.hasPrefix(mount) {
            return String(full.dropFirst(mount.count - 1))
        }
        return full
    }

    /// Moves `pid` (a job's host, before it forks anything) into the job's group, creating it.
    public func place(_ pid: pid_t, job: String) throws(LapwingError) {
        let dir = path(of: job)
        if mkdir(dir, 0o755) != 0 && errno != EEXIST {
            throw LapwingError.system("mkdir", errno: errno, object: dir)
        }
        try write("\(pid)\n", to: dir + "/cgroup.procs")
    }

    /// The job's CPU time so far, from its group's `cpu.stat` (nil without a group).
    public func cpuSeconds(of job: String) -> Double? {
        guard let text = try? String(contentsOfFile: path(of: job) + "/cpu.stat", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("usage_usec ") {
            return Double(line.dropFirst("usage_usec ".count)).map { $0 / 1e6 }
        }
        return nil
    }

    /// The memory the job's group holds now (memory.current: its processes' pages, its arena's
    /// included, charged to the group that first touched them).
    public func memoryBytes(of job: String) -> Int? {
        (try? String(contentsOfFile: path(of: job) + "/memory.current", encoding: .utf8))
            .flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// The processes in the job's group.
    public func processes(of job: String) -> [pid_t] {
        guard let text = try? String(contentsOfFile: path(of: job) + "/cgroup.procs", encoding: .utf8) else {
            return []
        }
        return text.split(separator: "\n").compactMap { pid_t($0) }
    }

    /// Kills whatever is left in the job's group and removes it; waits (up to `timeout`
    /// seconds) for the kernel to reap the processes. Returns the number of processes killed;
    /// throws when the group is still there at the end.
    @discardableResult
    public func remove(job: String, timeout: Double = 10) throws(LapwingError) -> Int {
        let dir = path(of: job)
        guard access(dir, F_OK) == 0 else { return 0 }
        let left = processes(of: job)
        if !left.isEmpty {
            // cgroup.kill (Linux 5.14) kills the whole group atomically, forks in flight included.
            if (try? write("1\n", to: dir + "/cgroup.kill")) == nil {
                for pid in left { kill(pid, SIGKILL) }
            }
        }
        let deadline = Date().timeIntervalSince1970 + timeout
        while rmdir(dir) != 0 {
            let e = errno
            if e == ENOENT { break }
            guard e == EBUSY, Date().timeIntervalSince1970 < deadline else {
                throw LapwingError.system("rmdir", errno: e, object: dir)
            }
            for pid in processes(of: job) { kill(pid, SIGKILL) }
            usleep(20_000)
        }
        return left.count
    }

    /// The jobs that have a group here.
    public func jobs() -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: root) else { return [] }
        return names.filter { $0.hasPrefix("job-") }.map { String($0.dropFirst(4)) }
    }

    private func write(_ text: String, to file: String) throws(LapwingError) {
        let fd = open(file, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw LapwingError.system("open", errno: errno, object: file) }
        defer { close(fd) }
        let n = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        guard n >= 0 else { throw LapwingError.system("write", errno: errno, object: file) }
    }
}
