import Foundation
import LapwingEngine
import LapwingJob
import LapwingTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A worker or the averager that dies is replaced by its job host where the algorithm allows it
/// (issue #11): the job goes on and completes; a synchronous worker's death, or a process that
/// keeps dying, fails the job with the reason.
extension JobTests {
@Suite struct ProcessReplacementTests {
    struct Job {
        let cli: SpawnedProcess
        let dir: String
        let id: String
    }

    func start(_ algorithm: String, epochs: String, extra: [String] = []) throws -> Job {
        let dir = try TestSupport.temporaryDirectory("replace")
        let id = TestSupport.jobID("replace")
        let cli = try SpawnedProcess(
            TestSupport.binary("lapwing"),
            ["run", "--json", "--data", fashionMNIST, "--model", "mlp:784-256-10", "--algorithm", algorithm, "--workers", "2",
             "--epochs", epochs, "--eval-every", "0", "--job-id", id, "--output-dir", dir + "/out"] + extra,
            outputIn: dir)
        return Job(cli: cli, dir: dir, id: id)
    }

    /// The pid of the job's process named `name` once it runs (and differs from `not`); nil if
    /// the job ended first.
    func process(_ job: Job, _ name: String, not old: pid_t? = nil) -> pid_t? {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            if let p = descendants(of: job.cli.pid).first(where: { processName($0) == name && $0 != old }) { return p }
            if job.cli.wait(timeout: 0.02) != nil { return nil }
        }
        return nil
    }

    func summary(_ job: Job) throws -> JobSummary {
        guard let line = job.cli.stdout.split(separator: "\n").last else { throw TestFailure("no summary: \(job.cli.stderr)") }
        return try JSONDecoder().decode(JobSummary.self, from: Data(line.utf8))
    }

    @Test func lapSGDReplacesAKilledWorkerAndAveragerAndCompletes() throws {
        let job = try start("lap-sgd", epochs: "6", extra: ["--replicas", "2"])
        defer { TestSupport.removeTemporaryDirectory(job.dir) }
        let worker = try #require(process(job, "lw-worker-1"))
        kill(worker, SIGKILL)
        let replacement = process(job, "lw-worker-1", not: worker)
        let averager = try #require(process(job, "lw-averager"))
        kill(averager, SIGKILL)
        _ = process(job, "lw-averager", not: averager)
        #expect(job.cli.wait(timeout: 300) == 0, "\(job.cli.stderr)")
        let s = try summary(job)
        #expect(s.outcome == "completed")
        #expect(replacement != nil, "no replacement worker appeared")
        #expect((s.restarts ?? 0) >= 1 && (s.restarts ?? 0) <= 2, "restarts: \(s.restarts ?? -1)")
        // 6 epochs of the MLP reach about 88% undisturbed; a lost step or two cannot cost 3 points.
        #expect((s.testAccuracy ?? 0) >= 0.85, "accuracy \(s.testAccuracy ?? 0)")
        #expect(!FileManager.default.fileExists(atPath: "/dev/shm/lapwing.\(job.id)"))
    }

    @Test func aSynchronousWorkersDeathFailsTheJobWithTheReason() throws {
        let job = try start("local-sgd", epochs: "50")
        defer { TestSupport.removeTemporaryDirectory(job.dir) }
        let worker = try #require(process(job, "lw-worker-0"))
        kill(worker, SIGKILL)
        #expect(job.cli.wait(timeout: 60) == 1)
        let s = try summary(job)
        #expect(s.outcome == "failed")
        #expect(s.reason?.contains("killed by signal 9") == true && s.reason?.contains("cannot be replaced mid-job") == true, "\(s.reason ?? "")")
        #expect(!FileManager.default.fileExists(atPath: "/dev/shm/lapwing.\(job.id)"))
    }

    @Test func aWorkerThatKeepsDyingFailsTheJob() throws {
        // A step of a 4096-wide layer at batch 4096 takes seconds: each replacement is killed
        // before it has trained one, which is what a crash loop looks like.
        let job = try start("hogwild", epochs: "200", extra: ["--model", "mlp:784-4096-10", "--batch", "4096"])
        defer { TestSupport.removeTemporaryDirectory(job.dir) }
        var last: pid_t?
        for _ in 0...JobHost.maxRestarts {
            guard let w = process(job, "lw-worker-0", not: last) else { break }
            kill(w, SIGKILL)
            last = w
        }
        #expect(job.cli.wait(timeout: 60) == 1)
        let s = try summary(job)
        #expect(s.outcome == "failed" && s.reason?.contains("the \(JobHost.maxRestarts + 1)th time in a row before it did any work") == true, "\(s.reason ?? "")")
        #expect(s.restarts == JobHost.maxRestarts)
    }
}
}
