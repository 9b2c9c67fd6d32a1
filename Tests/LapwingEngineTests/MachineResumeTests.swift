import Foundation
import LapwingJob
import LapwingTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension JobTests.MachineLevelTests {
    /// A lap-sgd job across two ranks, rank 1 interrupted mid-training, then resumed with
    /// `--resume-from` rank 0's checkpoint on both ranks: it completes the budget from where
    /// rank 0 stopped (its first evaluation already past those samples), at the accuracy of a
    /// job that was never stopped.
    @Test(JobTests.MachineLevelTests.needsMPI)
    func resumeAcrossMachinesFromRankZerosCheckpoint() throws {
        let dir = try TestSupport.temporaryDirectory("mpi-resume")
        defer { TestSupport.removeTemporaryDirectory(dir) }
        let lapwing = try TestSupport.binary("lapwing")
        let id = TestSupport.jobID("mpir")
        let options = [
            "--data", fashionMNIST, "--model", "mlp:784-256-10", "--algorithm", "lap-sgd", "--lr", "0.02", "--eval-every", "0.25",
        ]
        let job = ["run", "--mpi", "--json", "--workers", "1"] + options
        let first = try SpawnedProcess(
            mpirun, ["-n", "2", "--oversubscribe", lapwing] + job + ["--epochs", "30", "--output-dir", dir + "/a", "--job-id", id + "a"],
            outputIn: dir, environment: mpiEnvironment)
        defer { first.signalGroup(SIGKILL) }
        var host: pid_t?
        for _ in 0..<1200 where host == nil {
            if let text = try? String(contentsOfFile: dir + "/a/rank-1/metrics.jsonl", encoding: .utf8), !text.isEmpty {
                host = descendants(of: first.pid).first { Self.isJobHost($0, rank: 1) }
            }
            if host == nil { usleep(100_000) }
        }
        kill(try #require(host, "rank 1 did not start training: \(first.stderr)"), SIGINT)
        _ = first.wait(timeout: 120)
        let stopped = try JSONDecoder().decode(JobSummary.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/a/summary.json")))
        #expect(stopped.outcome == "interrupted" && stopped.samples > 0 && stopped.epochs < 3, "\(stopped.outcome) at \(stopped.epochs)")

        let resumed = try Self.twoRanks(
            options + ["--epochs", "3", "--resume-from", dir + "/a/" + "checkpoint.safetensors"], id: id + "b",
            dir: dir)
        #expect(resumed.outcome == "completed", "\(resumed.reason ?? "")")
        #expect(abs(resumed.epochs - 3) < 0.001, "\(resumed.epochs) epochs")
        #expect((resumed.testAccuracy ?? 0) >= 0.84, "\(resumed.testAccuracy ?? 0)")
        // Both ranks went on from rank 0's samples: their first evaluations are past them.
        for out in [dir + "/out", dir + "/out/rank-1"] {
            let text = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8)
            let first = try JSONSerialization.jsonObject(with: Data(text.split(separator: "\n")[0].utf8)) as? [String: Any]
            let samples = first?["samples"] as? Int ?? 0
            #expect(samples > stopped.samples, "\(out): first evaluation at \(samples), resumed from \(stopped.samples)")
        }
    }
}
