import Foundation
import LapwingDaemon
import LapwingJob
import LapwingTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// One control group per job (issue #11), on a real cgroup v2 hierarchy: this machine's
/// unified one, where a test running as root makes a group of its own to stand for the
/// service's delegated group. Skipped where there is no writable cgroup v2 hierarchy.
extension DaemonTests {
@Suite struct JobCgroupsTests {
    /// A fresh cgroup v2 directory for one test, or nil where none can be made.
    static func testRoot(_ tag: String) -> String? {
        for base in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
            guard access(base + "/cgroup.controllers", F_OK) == 0 else { continue }
            let dir = base + "/lapwing-test-\(tag)-\(getpid())"
            if mkdir(dir, 0o755) == 0 { return dir }
        }
        return nil
    }

    /// The group of `pid` on the unified hierarchy, as /proc shows it.
    static func group(of pid: pid_t) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first { $0.hasPrefix("0::") }.map { String($0.dropFirst(3)) }
    }

    @Test func whatIsLeftInAJobsGroupIsKilledAndTheGroupRemoved() throws {
        guard let root = Self.testRoot("stray") else { return }
        defer { rmdir(root) }
        let groups = JobCgroups(root: root)
        let stray = try SpawnedProcess("/bin/sleep", ["600"], outputIn: try TestSupport.temporaryDirectory("cg"))
        try groups.place(stray.pid, job: "j7")
        #expect(Self.group(of: stray.pid)?.hasSuffix("/job-j7") == true, "\(Self.group(of: stray.pid) ?? "?")")
        #expect(groups.processes(of: "j7") == [stray.pid])
        #expect(groups.jobs() == ["j7"])
        #expect(try groups.remove(job: "j7") == 1)
        #expect(stray.wait(timeout: 30) != nil, "the stray process outlived its job's group")
        #expect(access(groups.path(of: "j7"), F_OK) != 0)
        #expect(try groups.remove(job: "j7") == 0, "removing a group that is gone is not an error")
    }

    @Test func aDaemonPutsEachJobInItsOwnGroupAndRemovesItAtTheEnd() throws {
        guard let root = Self.testRoot("daemon") else { return }
        defer {
            for job in JobCgroups(root: root).jobs() { _ = try? JobCgroups(root: root).remove(job: job) }
            rmdir(root)
        }
        let d = try DaemonHarness(tag: "cgroups")
        defer { d.cleanUp() }
        try d.start(arguments: ["--user", "--socket-mode", "0666", "--job-cgroups", root])
        let id = try d.submit([
            "--model", "mlp:784-32-10", "--algorithm", "lap-sgd", "--workers", "2", "--replicas", "2",
            "--epochs", "2", "--eval-every", "0",
        ]).id
        let groups = JobCgroups(root: root)
        // Host, averager and workers: every process of the job sits in the job's group.
        #expect(eventually(timeout: 120) { groups.processes(of: id).count >= 4 }, "\(groups.processes(of: id))")
        let running = try decode(JobRecord.self, d.cli(["status", id, "--json"]).stdout)
        if let host = running.hostPID, running.state == .running {
            #expect(groups.processes(of: id).contains(host))
            #expect(running.cgroup.map { Self.group(of: host)?.hasSuffix($0) == true } == true)
        }
        _ = try d.cli(["watch", id], timeout: 300)
        let end = try decode(JobRecord.self, d.cli(["status", id, "--json"]).stdout)
        #expect(end.state == .succeeded, "\(end.state) (\(end.reason ?? ""))")
        #expect((end.cpuSeconds ?? 0) > 0, "no CPU time recorded for the job's group")
        #expect(eventually(timeout: 30) { access(groups.path(of: id), F_OK) != 0 }, "the job's group outlived it")
        let text = try d.cli(["status", id]).stdout
        #expect(text.contains("control group") && text.contains("CPU time"), "\(text)")
    }
}
}
