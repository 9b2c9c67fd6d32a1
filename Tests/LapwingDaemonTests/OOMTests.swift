import Foundation
import LapwingJob
import LapwingTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A memory cgroup of the test's own (cgroup v1's memory controller, as on these VMs), with a
/// limit, for a daemon to run in.
struct MemoryCgroup {
    let path: String

    /// A child of this process's memory cgroup; nil where none can be made (no v1 memory
    /// hierarchy, or not allowed).
    static func make(limitBytes: Int) -> MemoryCgroup? {
        guard let text = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.split(separator: ":").dropFirst().first == "memory" }),
            let own = line.split(separator: ":", maxSplits: 2).last
        else { return nil }
        let path = "/sys/fs/cgroup/memory" + own + "/lapwing-oom-\(getpid())"
        guard mkdir(path, 0o755) == 0 || errno == EEXIST else { return nil }
        let cg = MemoryCgroup(path: path)
        guard cg.setLimit(limitBytes) else {
            rmdir(path)
            return nil
        }
        return cg
    }

    @discardableResult
    func setLimit(_ bytes: Int) -> Bool {
        (try? "\(bytes)".write(toFile: path + "/memory.limit_in_bytes", atomically: false, encoding: .utf8)) != nil
    }

    func add(_ pid: pid_t) throws { try "\(pid)".write(toFile: path + "/cgroup.procs", atomically: false, encoding: .utf8) }

    /// Moves what is left back to the parent, then removes the cgroup.
    func remove() {
        let parent = (path as NSString).deletingLastPathComponent
        if let procs = try? String(contentsOfFile: path + "/cgroup.procs", encoding: .utf8) {
            for p in procs.split(separator: "\n") { try? String(p).write(toFile: parent + "/cgroup.procs", atomically: false, encoding: .utf8) }
        }
        rmdir(path)
    }
}

/// A job killed by the OOM killer fails saying so, and the daemon goes on (issue #11).
extension DaemonTests {
@Suite struct OOMTests {
    @Test func anOOMKilledJobSaysSoAndTheDaemonGoesOn() throws {
        guard let cgroup = MemoryCgroup.make(limitBytes: 150 << 20) else {
            print("OOMTests: no cgroup v1 memory hierarchy to make a limited cgroup in; not run here")
            return
        }
        defer { cgroup.remove() }
        let d = try DaemonHarness(tag: "oom")
        defer { d.cleanUp() }
        try d.start()
        try cgroup.add(d.daemon!.pid)
        // 20M parameters: 80 MB a replica, beside 55 MB of data, in 150 MB with the daemon.
        let id = try d.submit(["--model", "mlp:784-4096-4096-10", "--workers", "1", "--epochs", "1"]).id
        _ = try d.cli(["watch", id], timeout: 300)
        let r = try decode(JobRecord.self, d.cli(["status", id, "--json"]).stdout)
        #expect(r.state == .failed, "\(r.state)")
        #expect(r.reason?.contains("OOM killer") == true, "\(r.reason ?? "")")
        #expect(try d.cli(["version"]).status == 0, "the daemon does not answer after the OOM kill")
        #expect(!FileManager.default.fileExists(atPath: "/dev/shm/lapwing.\(id)"), "arena left behind")
        // With room again, the next job trains.
        cgroup.setLimit(4 << 30)
        let next = try d.submit(["--model", "softmax", "--workers", "1", "--epochs", "0.2"]).id
        _ = try d.cli(["watch", next], timeout: 300)
        #expect(try decode(JobRecord.self, d.cli(["status", next, "--json"]).stdout).state == .succeeded)
    }
}
}
