import Foundation
import LapwingJob
import LapwingTestSupport
import LapwingTopology
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `lapwing list` as a sysadmin reads it (issue #14): names, users, times, filters; and
/// LAPWING_SOCKET.
extension DaemonTests {
@Suite struct ListTests {
    @Test func listShowsNamesUsersAndTimesAndFilters() throws {
        let d = try DaemonHarness(tag: "list")
        defer { d.cleanUp() }
        try d.start()
        let short = ["--model", "softmax", "--workers", "1", "--epochs", "0.2", "--eval-every", "0"]
        let a = try d.submit(short + ["--name", "first try"]).id
        let b = try d.submit(short + ["--name", "second"]).id
        _ = try d.cli(["watch", b], timeout: 300)
        _ = try d.cli(["watch", a], timeout: 300)

        let all = try d.cli(["list"])
        #expect(all.status == 0, "\(all.stderr)")
        let lines = all.stdout.split(separator: "\n")
        #expect(lines.first?.hasPrefix("JOB") == true && lines.first?.contains("USER") == true && lines.first?.contains("SUBMITTED") == true)
        #expect(lines.contains { $0.contains(a) && $0.contains("first try") && $0.contains("root") && $0.contains("succeeded") }, "\(all.stdout)")

        let named = try d.cli(["list", "--name", "second"]).stdout
        #expect(named.contains(b) && !named.contains(a), "\(named)")
        #expect(try d.cli(["list", "--state", "running,queued"]).stdout.split(separator: "\n").count == 1)
        #expect(try d.cli(["list", "--user", "root", "--json"]).stdout.contains(a))
        #expect(!(try d.cli(["list", "--user", "nobody"]).stdout.contains(a)))
        let badState = try d.cli(["list", "--state", "sleeping"])
        #expect(badState.status == 2 && badState.stderr.contains("--state sleeping"), "\(badState.stderr)")
        let badName = try d.cli(["submit", "--data", fashionMNIST, "--name", "bad\u{7}name"] + short)
        #expect(badName.status == 2 && badName.stderr.contains("--name"), "\(badName.stderr)")

        let status = try d.cli(["status", a]).stdout
        #expect(status.contains("(first try)") && status.contains("user root (uid 0)") && status.contains("trained "), "\(status)")

        // LAPWING_SOCKET names the daemon when --socket does not.
        let viaEnvironment = try runProgram(
            "/usr/bin/env", ["LAPWING_SOCKET=\(d.socket)", "XDG_RUNTIME_DIR=/nonexistent", try TestSupport.binary("lapwing"), "list"])
        #expect(viaEnvironment.status == 0 && viaEnvironment.stdout.contains(a), "\(viaEnvironment.stderr)")
    }

    @Test func topOnceShowsTheRunningJobsWithTheirRates() throws {
        let d = try DaemonHarness(tag: "top")
        defer { d.cleanUp() }
        try d.start()
        let running = try d.submit(["--model", "mlp:784-64-10", "--workers", "1", "--epochs", "500", "--eval-every", "0", "--name", "top run"]).id
        // Every core: it waits while the first job runs.
        let cores = QuickCounts.allowedCores() ?? 2
        let queued = try d.submit(["--model", "softmax", "--workers", "\(cores)", "--epochs", "1", "--eval-every", "0"]).id
        // Once the running job has reported its rate and the daemon its memory.
        let reported = try eventually(timeout: 120, every: 0.25) {
            let r = try decode(JobRecord.self, d.cli(["status", running, "--json"]).stdout)
            return r.progress?.samplesPerSecond != nil && r.memoryBytes != nil
        }
        #expect(reported)
        let top = try d.cli(["top", "--once"])
        #expect(top.status == 0, "\(top.stderr)")
        let lines = top.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("lapwing top - ") == true && lines.first?.contains("1 running (1 core), 1 queued") == true, "\(top.stdout)")
        #expect(!top.stdout.contains("\u{1B}["), "--once writes no terminal codes")
        let header = try #require(lines.first { $0.hasPrefix("JOB") })
        for column in ["USER", "CORES", "SAMPLES/S", "TRAIN LOSS", "TEST ACC", "MEMORY"] { #expect(header.contains(column)) }
        let row = try #require(lines.first { $0.hasPrefix(running) }, "\(top.stdout)")
        #expect(row.contains("top run") && row.contains("root") && row.contains("running"), "\(row)")
        // The memory column holds a size, not "-".
        #expect(row.contains("MiB") || row.contains("GiB"), "no memory in \(row)")
        #expect(!lines.contains { $0.hasPrefix(queued) }, "a queued job is not in top")
        let json = try decode([JobRecord].self, d.cli(["top", "--once", "--json"]).stdout)
        #expect(json.map(\.id) == [running] && json[0].memoryBytes.map { $0 > 1 << 20 } == true)
        for id in [running, queued] { _ = try d.cli(["cancel", id]) }
    }
}
}
