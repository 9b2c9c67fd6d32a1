import Foundation
import LapwingJob
import LapwingTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Each job's own log (`lapwing logs JOB`, `-f`): the host's lines, from its start and
/// placement to its end or its error.
extension DaemonTests {
@Suite struct JobLogTests {
    @Test func aJobsLogTellsItsStartEvaluationsAndEndAndFollows() throws {
        let d = try DaemonHarness(tag: "logs")
        defer { d.cleanUp() }
        try d.start()
        let id = try d.submit([
            "--model", "mlp:784-32-10", "--algorithm", "lap-sgd", "--workers", "2", "--replicas", "2",
            "--epochs", "3", "--eval-every", "1",
        ]).id
        // -f returns once the job has ended, with its last line.
        let followed = try d.cli(["logs", id, "-f"], timeout: 300)
        #expect(followed.status == 0, "\(followed.stderr)")
        let log = followed.stdout
        #expect(log.contains("job \(id): started: lap-sgd"), "\(log)")
        #expect(log.contains("on cpus") && log.contains("BLAS kernels"), "\(log)")
        #expect(log.contains("epoch 3.00 of 3: test accuracy"), "\(log)")
        #expect(log.contains("checkpoint written at 180000 samples"), "\(log)")
        #expect(log.contains("job \(id): completed: 180000 samples"), "\(log)")
        // Lines start with a UTC timestamp.
        #expect(log.split(separator: "\n").allSatisfy { $0.count > 24 && $0.dropFirst(23).hasPrefix("Z job ") }, "\(log)")
    }

    @Test func aFailedJobsLogShowsItsError() throws {
        let d = try DaemonHarness(tag: "logs-fail")
        defer { d.cleanUp() }
        try d.start()
        let id = try d.submit([
            "--model", "softmax", "--algorithm", "hogwild", "--workers", "2", "--lr", "1000", "--epochs", "2",
            "--eval-every", "0",
        ]).id
        _ = try d.cli(["watch", id], timeout: 300)
        let r = try decode(JobRecord.self, d.cli(["status", id, "--json"]).stdout)
        #expect(r.state == .failed)
        let log = try d.cli(["logs", id]).stdout
        #expect(log.contains("job \(id): failed (training diverged: worker"), "\(log)")
        #expect(log.contains("checkpoint not written") || !log.contains("checkpoint written"), "a diverged model is never checkpointed")
    }
}
}
