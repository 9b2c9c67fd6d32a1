import Foundation
import LapwingJob
import LapwingTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `--on-divergence backoff:N` (issue #11): a job whose training diverges goes on with half the
/// learning rate, from its last checkpoint, at most N times; `fail` (the default) fails it at
/// once. Softmax on raw Fashion-MNIST pixels at a learning rate of 1000 diverges within its
/// first steps; at a few halvings it trains.
extension DaemonTests {
@Suite struct DivergenceBackoffTests {
    func run(_ options: [String], dir: String) throws -> (status: Int32, stdout: String, stderr: String) {
        try runProgram(
            try TestSupport.binary("lapwing"),
            ["run", "--data", fashionMNIST, "--model", "softmax", "--algorithm", "lap-sgd", "--workers", "2",
             "--replicas", "2", "--eval-every", "0", "--json", "--output-dir", dir] + options, timeout: 300)
    }

    @Test func aDivergingRunFailsOrBacksOffAsAsked() throws {
        let dir = try TestSupport.temporaryDirectory("backoff")
        let failed = try run(["--lr", "1000", "--epochs", "2"], dir: dir + "/fail")
        #expect(failed.status == 1 && failed.stdout.contains("training diverged"), "\(failed.stdout) \(failed.stderr)")

        let backed = try run(["--lr", "1000", "--epochs", "2", "--on-divergence", "backoff:10"], dir: dir + "/backoff")
        #expect(backed.status == 0, "\(backed.stdout) \(backed.stderr)")
        #expect(backed.stderr.contains("half the learning rate, 500.0 (backoff 1 of 10)"), "\(backed.stderr)")
        let summary = try decode(JobSummary.self, backed.stdout.split(separator: "\n").last.map(String.init) ?? "")
        #expect(summary.outcome == "completed" && summary.samples == 120_000)
        #expect((summary.testAccuracy ?? 0) > 0.6, "accuracy \(summary.testAccuracy ?? 0)")

        let few = try run(["--lr", "1000", "--epochs", "2", "--on-divergence", "backoff:1"], dir: dir + "/few")
        #expect(few.status == 1 && few.stderr.contains("backoff 1 of 1") && few.stdout.contains("training diverged"))
        let bad = try run(["--on-divergence", "backoff:0"], dir: dir + "/bad")
        #expect(bad.status == 2 && bad.stderr.contains("--on-divergence backoff:0"), "\(bad.stderr)")
    }

    /// A job that trained, then diverges at a new learning rate, goes on from its checkpoint:
    /// the samples before the divergence count, and the schedule continues.
    @Test func aBackoffGoesOnFromTheLastCheckpoint() throws {
        let dir = try TestSupport.temporaryDirectory("backoff-ckpt") + "/job"
        let first = try run(["--lr", "0.0005", "--epochs", "2"], dir: dir)
        #expect(first.status == 0, "\(first.stderr)")
        let checkpoint = dir + "/checkpoint.safetensors"
        #expect(FileManager.default.fileExists(atPath: checkpoint))
        // Same directory, so its checkpoint is the job's last one.
        let second = try run(
            ["--lr", "100", "--epochs", "4", "--resume-from", checkpoint, "--on-divergence", "backoff:10",
             "--checkpoint-every", "0"], dir: dir)
        #expect(second.status == 0, "\(second.stdout) \(second.stderr)")
        #expect(second.stderr.contains("going on from its last checkpoint"), "\(second.stderr)")
        let summary = try decode(JobSummary.self, second.stdout.split(separator: "\n").last.map(String.init) ?? "")
        #expect(summary.samples == 240_000, "samples \(summary.samples): the budget goes on from the checkpoint's 120000")
    }

    @Test func theDaemonBacksOffTooAndCountsIt() throws {
        let d = try DaemonHarness(tag: "backoff")
        defer { d.cleanUp() }
        try d.start()
        let id = try d.submit([
            "--model", "softmax", "--algorithm", "lap-sgd", "--workers", "2", "--replicas", "2", "--lr", "1000",
            "--epochs", "2", "--eval-every", "0", "--on-divergence", "backoff:10",
        ]).id
        _ = try d.cli(["watch", id], timeout: 300)
        let r = try decode(JobRecord.self, d.cli(["status", id, "--json"]).stdout)
        #expect(r.state == .succeeded, "\(r.state) (\(r.reason ?? ""))")
        #expect((r.divergenceBackoffs ?? 0) >= 1 && r.spec.schedule.base < 1000, "\(r.divergenceBackoffs ?? 0)")
        #expect(r.summary?.samples == 120_000)
    }
}
}
