import Foundation
import LapwingJob
import LapwingTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `lapwing checkpoint JOB`: a checkpoint on demand (issue #11).
extension DaemonTests {
@Suite struct CheckpointVerbTests {
    @Test func aRunningJobWritesItsCheckpointWhenAsked() throws {
        let d = try DaemonHarness(tag: "ckpt")
        defer { d.cleanUp() }
        try d.start()
        // No periodic checkpoints: only the one asked for can appear while it trains.
        let id = try d.submit([
            "--model", "mlp:784-64-10", "--algorithm", "lap-sgd", "--workers", "2", "--replicas", "2",
            "--epochs", "30", "--eval-every", "0", "--checkpoint-every", "0",
        ]).id
        let file = d.stateDirectory + "/jobs/\(id)/checkpoint.safetensors"
        #expect(try eventually(timeout: 120) {
            let r = try decode(JobRecord.self, d.cli(["status", id, "--json"]).stdout)
            return r.state == .running && (r.progress?.samples ?? 0) > 0
        })
        #expect(!FileManager.default.fileExists(atPath: file))
        let asked = try d.cli(["checkpoint", id])
        #expect(asked.status == 0 && asked.stdout.contains("checkpoint written"), "\(asked.stdout) \(asked.stderr)")
        #expect(FileManager.default.fileExists(atPath: file))
        let r = try decode(JobRecord.self, d.cli(["status", id, "--json"]).stdout)
        #expect(r.checkpointed != nil && r.state == .running, "\(r.state)")
        // Asked again: a newer one.
        let again = try d.cli(["checkpoint", id, "--json"])
        let after = try decode(JobRecord.self, again.stdout)
        #expect(again.status == 0 && (after.checkpointed ?? 0) > (r.checkpointed ?? 0), "\(again.stderr)")

        #expect(try d.cli(["cancel", id]).status == 0)
        #expect(try eventually(timeout: 60) { try decode(JobRecord.self, d.cli(["status", id, "--json"]).stdout).state.isFinished })
        let refused = try d.cli(["checkpoint", id])
        #expect(refused.status != 0 && refused.stderr.contains("only a running or paused job"), "\(refused.stderr)")
        let nobody = try d.cli(["checkpoint", "j999"])
        #expect(nobody.status != 0 && nobody.stderr.contains("j999"), "\(nobody.stderr)")
    }
}
}
