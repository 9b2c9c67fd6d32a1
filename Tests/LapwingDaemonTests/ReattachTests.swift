import Foundation
import LapwingJob
import LapwingTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A job host outlives a kill -9 of the daemon (issue #11): the next daemon re-attaches to it by
/// pid and start time and sees it to its end, or, if it ended meanwhile, takes its outcome from
/// the summary it wrote; the model is exported either way.
extension DaemonTests {
@Suite struct ReattachTests {
    func record(_ d: DaemonHarness, _ id: String) throws -> JobRecord {
        try decode(JobRecord.self, d.cli(["status", id, "--json"]).stdout)
    }

    /// Waits until the job has trained some samples; returns its record then.
    func waitForProgress(_ d: DaemonHarness, _ id: String, beyond: Int = 0) throws -> JobRecord {
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let r = try record(d, id)
            if (r.progress?.samples ?? 0) > beyond || r.state.isFinished { return r }
            usleep(50_000)
        }
        throw TestFailure("job \(id) made no progress")
    }

    /// Whether `pid` runs (a zombie left to a reaper that has not come yet does not).
    func alive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")")
        else { return false }
        return !stat[stat.index(after: close)...].hasPrefix(" Z")
    }

    func expectExported(_ d: DaemonHarness, _ id: String) throws {
        let out = d.dir + "/\(id).safetensors"
        let r = try d.cli(["export", id, "-o", out])
        #expect(r.status == 0, "export: \(r.stderr)")
        #expect(FileManager.default.fileExists(atPath: out))
    }

    @Test func aRunningJobOutlivesTheDaemonAndIsReattached() throws {
        let d = try DaemonHarness(tag: "reattach")
        defer { d.cleanUp() }
        try d.start()
        let id = try d.submit(["--model", "mlp:784-256-10", "--workers", "2", "--replicas", "2", "--epochs", "8"]).id
        let before = try waitForProgress(d, id)
        let host = try #require(before.hostPID)
        d.crash()
        #expect(alive(host), "the job host died with the daemon")
        try d.start()
        let again = try record(d, id)
        #expect(again.state == .running || again.state == .succeeded, "\(again.state) (\(again.reason ?? ""))")
        if again.state == .running {
            // Progress comes from the arena while no event stream is left; it keeps growing.
            let seen = try waitForProgress(d, id, beyond: again.progress?.samples ?? 0)
            #expect((seen.progress?.samples ?? 0) > (again.progress?.samples ?? 0) || seen.state.isFinished)
            // ...and so does its rate (for watch and the metrics).
            let rated = try eventually(timeout: 60) {
                let r = try record(d, id)
                return (r.progress?.samplesPerSecond ?? 0) > 0 || r.state.isFinished
            }
            #expect(rated, "no samples/s for a re-attached job")
        }
        _ = try d.cli(["watch", id], timeout: 300)
        let end = try record(d, id)
        #expect(end.state == .succeeded, "\(end.state) (\(end.reason ?? ""))")
        #expect((end.summary?.testAccuracy ?? 0) >= 0.85, "accuracy \(end.summary?.testAccuracy ?? 0)")
        try expectExported(d, id)
        #expect(!FileManager.default.fileExists(atPath: "/dev/shm/lapwing.\(id)"))
    }

    @Test func aJobThatEndedWhileNoDaemonWatchedKeepsItsOutcome() throws {
        let d = try DaemonHarness(tag: "orphan")
        defer { d.cleanUp() }
        try d.start()
        let id = try d.submit(["--model", "softmax", "--workers", "2", "--epochs", "3"]).id
        let before = try waitForProgress(d, id)
        let host = try #require(before.hostPID)
        d.crash()
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline && alive(host) { usleep(50_000) }
        #expect(!alive(host), "the job host did not end")
        try d.start()
        let end = try record(d, id)
        #expect(end.state == .succeeded, "\(end.state) (\(end.reason ?? ""))")
        #expect(end.summary?.outcome == "completed")
        try expectExported(d, id)
    }

    @Test func theNextDaemonSweepsTheArenaOfAHostThatDied() throws {
        let d = try DaemonHarness(tag: "sweep")
        defer { d.cleanUp() }
        try d.start()
        let id = try d.submit(["--model", "mlp:784-256-10", "--workers", "2", "--epochs", "50"]).id
        let host = try #require(try waitForProgress(d, id).hostPID)
        d.crash()
        kill(host, SIGKILL)  // its workers die with it; nobody removes the arena
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline && alive(host) { usleep(20_000) }
        #expect(FileManager.default.fileExists(atPath: "/dev/shm/lapwing.\(id)"))
        try d.start()
        let r = try record(d, id)
        #expect(r.state == .interrupted && r.reason?.contains("daemon") == true, "\(r.state) (\(r.reason ?? ""))")
        #expect(!FileManager.default.fileExists(atPath: "/dev/shm/lapwing.\(id)"), "arena left behind")
    }

    @Test func withKeepJobsAStopLeavesTheJobTrainingForTheNextDaemon() throws {
        let d = try DaemonHarness(tag: "keep")
        defer { d.cleanUp() }
        let args = ["--user", "--socket-mode", "0666", "--keep-jobs"]
        try d.start(arguments: args)
        let id = try d.submit(["--model", "mlp:784-64-10", "--workers", "2", "--replicas", "2", "--epochs", "15"]).id
        let host = try #require(try waitForProgress(d, id).hostPID)
        #expect(d.stop() == 0)
        #expect(alive(host), "the job host stopped with the daemon")
        try d.start(arguments: args)
        let again = try record(d, id)
        #expect(again.state == .running || again.state == .succeeded, "\(again.state) (\(again.reason ?? ""))")
        _ = try d.cli(["watch", id], timeout: 300)
        let end = try record(d, id)
        #expect(end.state == .succeeded, "\(end.state) (\(end.reason ?? ""))")
        #expect((end.summary?.testAccuracy ?? 0) >= 0.85)
    }
}
}
