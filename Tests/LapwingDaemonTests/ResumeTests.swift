import Foundation
import LapwingJob
import LapwingProtocol
import LapwingTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `lapwing resume` of a cancelled job goes on from its checkpoint under the same id (issue #11).
extension DaemonTests {
@Suite struct ResumeTests {
    func record(_ d: DaemonHarness, _ id: String) throws -> JobRecord {
        try decode(JobRecord.self, d.cli(["status", id, "--json"]).stdout)
    }

    static let epochs = 20
    static let killedHostEpochs = 60

    /// Submits a lap-sgd job that checkpoints every second and waits for its first checkpoint.
    func submitUntilCheckpointed(_ d: DaemonHarness, epochs: Int = Self.epochs) throws -> String {
        let id = try d.submit([
            "--model", "mlp:784-64-10", "--algorithm", "lap-sgd", "--workers", "2", "--replicas", "2",
            "--epochs", "\(epochs)", "--eval-every", "0", "--checkpoint-every", "1",
        ]).id
        let checkpoint = d.stateDirectory + "/jobs/\(id)/checkpoint.safetensors"
        #expect(eventually(timeout: 120) { FileManager.default.fileExists(atPath: checkpoint) }, "no checkpoint")
        return id
    }

    @Test func aCancelledJobResumesFromItsCheckpoint() throws {
        let d = try DaemonHarness(tag: "resume")
        defer { d.cleanUp() }
        try d.start()
        let id = try submitUntilCheckpointed(d)
        #expect(try d.cli(["cancel", id]).status == 0)
        #expect(try eventually(timeout: 60) { try record(d, id).state.isFinished })
        let cancelled = try record(d, id)
        try #require(cancelled.state == .cancelled, "\(cancelled.state): 20 epochs end long after the first checkpoint")

        // Without its data the daemon cannot resume it, and says what to do.
        let bare = try ControlClient(path: d.socket)
        #expect(throws: (any Error).self) { _ = try bare.call(.resume, args: ResumeArgs(job: id)) }

        let r = try d.cli(["resume", id])
        #expect(r.status == 0, "\(r.stderr)")
        _ = try d.cli(["watch", id], timeout: 300)
        let end = try record(d, id)
        #expect(end.state == .succeeded, "\(end.state) (\(end.reason ?? ""))")
        #expect(end.summary?.samples == Self.epochs * 60_000, "samples \(end.summary?.samples ?? -1)")
        #expect((end.summary?.testAccuracy ?? 0) >= 0.85, "accuracy \(end.summary?.testAccuracy ?? 0)")
        let out = d.dir + "/model.safetensors"
        #expect(try d.cli(["export", id, "-o", out]).status == 0)

        // A job that succeeded does not resume.
        let again = try d.cli(["resume", id])
        #expect(again.status != 0 && again.stderr.contains("only an interrupted, failed or cancelled job"), "\(again.stderr)")
    }

    @Test func aKilledJobHostIsStartedAgainFromTheCheckpoint() throws {
        let d = try DaemonHarness(tag: "hostkill")
        defer { d.cleanUp() }
        try d.start()
        // Long enough that the host is still training when it is killed: on a quiet machine 20
        // epochs (4-6 s) once ended before the kill landed, a second after the first checkpoint.
        let epochs = Self.killedHostEpochs
        let id = try submitUntilCheckpointed(d, epochs: epochs)
        let host = try #require(try record(d, id).hostPID)
        kill(host, SIGKILL)
        #expect(try eventually(timeout: 60) { try record(d, id).hostPID.map { $0 != host } ?? false }, "no new host")
        _ = try d.cli(["watch", id], timeout: 300)
        let end = try record(d, id)
        #expect(end.state == .succeeded, "\(end.state) (\(end.reason ?? ""))")
        #expect(end.hostRestarts == 1)
        #expect(end.summary?.samples == epochs * 60_000, "samples \(end.summary?.samples ?? -1)")
        #expect((end.summary?.testAccuracy ?? 0) >= 0.85)
        let pid = d.daemon!.pid
        #expect(eventually(timeout: 30) { descendants(of: pid).isEmpty }, "processes left: \(descendants(of: pid))")
    }
}
}
