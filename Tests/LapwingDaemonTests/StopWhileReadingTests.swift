import Foundation
import LapwingJob
import LapwingDaemon
import LapwingTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A job host waiting for data from a FIFO that never comes still stops when told to (issue #8,
/// point 6): `lapwing cancel` through the daemon, and Ctrl-C of `lapwing run`.
extension DaemonTests {
@Suite struct StopWhileReadingTests {
    /// What the kernel says process `pid` sleeps in (/proc/PID/wchan), "" if unknown.
    static func wchan(_ pid: pid_t) -> String {
        (try? String(contentsOfFile: "/proc/\(pid)/wchan", encoding: .utf8)) ?? ""
    }

    /// True once `pid` is blocked on the FIFO: it sleeps in open, read or poll of it. Where the
    /// kernel hides wchan ("0"), having the FIFO open (or being in open) is all there is to see.
    static func waitsOnFIFO(_ pid: pid_t, _ fifo: String) -> Bool {
        let w = wchan(pid)
        let holds = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).contains {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")) == fifo
        }
        let blocked = ["poll", "pipe", "fifo", "wait_for_partner"].contains { w.contains($0) }
        return w == "0" || w.isEmpty ? holds : blocked && (holds || w.contains("fifo") || w.contains("partner"))
    }

    /// True while `pid` runs (neither gone nor a zombie).
    static func isRunning(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        return stat[stat.index(close, offsetBy: 2)] != "Z"
    }

    static func makeFIFO(in dir: String) throws -> String {
        let fifo = (dir as NSString).resolvingSymlinksInPath + "/feed.svm"
        guard mkfifo(fifo, 0o600) == 0 else { throw TestFailure("mkfifo \(fifo): \(String(cString: strerror(errno)))") }
        return fifo
    }

    @Test func aFIFOFedJobIsCancelledWithinTwoSeconds() throws {
        let d = try DaemonHarness(tag: "fifo")
        defer { d.cleanUp() }
        try d.start()
        let fifo = try Self.makeFIFO(in: d.dir)
        // A writer that never writes: the CLI's open of the FIFO returns, the job's read waits.
        let writer = open(fifo, O_RDWR | O_CLOEXEC)
        try #require(writer >= 0)
        defer { close(writer) }
        let sub = try d.cli(["submit", "--json", "--data", "libsvm:\(fifo)", "--model", "logistic", "--workers", "1"])
        try #require(sub.status == 0, "submit: \(sub.stderr)")
        let id = try decode(JobRecord.self, sub.stdout).id

        var host: pid_t?
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            let r = try decode(JobRecord.self, d.cli(["status", id, "--json"]).stdout)
            if r.state.isFinished { break }
            if let pid = r.hostPID, Self.waitsOnFIFO(pid, fifo) {
                host = pid
                break
            }
            usleep(50_000)
        }
        let pid = try #require(host, "the job's host never waited on the FIFO")

        let t0 = Date()
        let cancel = try d.cli(["cancel", id, "--json"])
        #expect(cancel.status == 0, "cancel: \(cancel.stderr)")
        while Self.isRunning(pid) && Date().timeIntervalSince(t0) < 30 { usleep(10_000) }
        let stopped = Date().timeIntervalSince(t0)
        #expect(!Self.isRunning(pid), "the job host still runs 30 s after the cancel")
        #expect(stopped < 2, "the job host took \(stopped) s to stop after the cancel")

        var record: JobRecord?
        while Date().timeIntervalSince(t0) < 60 {
            record = try decode(JobRecord.self, d.cli(["status", id, "--json"]).stdout)
            if record?.state.isFinished == true { break }
            usleep(50_000)
        }
        #expect(record?.state == .cancelled, "\(String(describing: record?.state)): \(record?.reason ?? "")")
    }

    @Test func ctrlCStopsAFIFOFedRun() throws {
        let dir = try TestSupport.temporaryDirectory("fifo-run")
        defer { TestSupport.removeTemporaryDirectory(dir) }
        let fifo = try Self.makeFIFO(in: dir)
        let id = TestSupport.jobID("fifo-run")
        // Nobody ever opens the FIFO for writing: the host waits for a writer.
        let cli = try SpawnedProcess(
            TestSupport.binary("lapwing"),
            ["run", "--data", "libsvm:\(fifo)", "--model", "logistic", "--workers", "1", "--job-id", id,
             "--output-dir", dir + "/out"],
            outputIn: dir)
        var host: pid_t?
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline && host == nil {
            host = descendants(of: cli.pid).first { processName($0) == "lw-host" && Self.waitsOnFIFO($0, fifo) }
            if host == nil && cli.wait(timeout: 0.05) != nil { break }
        }
        let pid = try #require(host, "the job host never waited on the FIFO: \(cli.stderr)")

        cli.signalGroup(SIGINT)  // what a terminal's Ctrl-C sends
        let status = cli.wait(timeout: 30)
        #expect(status == 130, "lapwing run exited \(String(describing: status)): \(cli.stdout) \(cli.stderr)")
        #expect(cli.stdout.contains("interrupted") && cli.stdout.contains("while reading"), "\(cli.stdout)")
        #expect(!Self.isRunning(pid), "the job host is still running")
        #expect(!FileManager.default.fileExists(atPath: "/dev/shm/lapwing.\(id)"))
    }
}
}
