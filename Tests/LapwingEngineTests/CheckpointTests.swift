import Foundation
import LapwingCore
import LapwingJob
import LapwingTestSupport
import Testing

@testable import LapwingEngine

#if canImport(Glibc)
import Glibc
#endif

/// Checkpoints and `--resume-from` (issue #11): an interrupted job resumed from its checkpoint
/// goes on with its step counts and sample budget (so with the schedule where it was), and ends
/// where an uninterrupted job would.
extension JobTests {
@Suite struct CheckpointTests {
    /// Long enough that the first periodic checkpoint (after 1 s) comes well before the end on
    /// any machine (about 1 s an epoch here).
    static let epochs = 20
    static let job = [
        "--data", fashionMNIST, "--model", "mlp:784-64-10", "--algorithm", "lap-sgd", "--workers", "2", "--replicas", "2",
        "--epochs", "\(CheckpointTests.epochs)", "--eval-every", "0",
    ]

    func counters(_ path: String) throws -> (samples: Int, steps: [Int], meta: [String: String]) {
        let meta = try SafeTensors.read(path).metadata
        let steps = (meta["steps"] ?? "").split(separator: ",").compactMap { Int($0) }
        return (Int(meta["samples"] ?? "") ?? -1, steps, meta)
    }

    @Test func anInterruptedJobResumesWhereItStopped() throws {
        let dir = try TestSupport.temporaryDirectory("ckpt")
        defer { TestSupport.removeTemporaryDirectory(dir) }
        // First part: checkpoints every second; interrupted once one is on disk.
        let first = try SpawnedProcess(
            TestSupport.binary("lapwing"),
            ["run", "--json", "--output-dir", dir + "/a", "--checkpoint-every", "1", "--job-id", TestSupport.jobID("ckpt-a")]
                + Self.job, outputIn: dir)
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline && !FileManager.default.fileExists(atPath: dir + "/a/" + Checkpoint.fileName) {
            if first.wait(timeout: 0.05) != nil { break }
        }
        first.signalGroup(SIGINT)
        #expect(first.wait(timeout: 60) == 130, "\(first.stderr)")
        let stopped = try counters(dir + "/a/" + Checkpoint.fileName)
        #expect(stopped.samples > 0, "nothing trained before the interrupt")
        #expect(stopped.steps.count == 2 && stopped.steps.allSatisfy { $0 > 0 })
        // The divergence check's yardsticks travel too (a resumed worker's first loss is small).
        #expect((stopped.meta["first_losses"] ?? "").split(separator: ",").compactMap { UInt32($0) }.allSatisfy { $0 != 0 })

        // Second part: resumed; it trains only what was left.
        let s = try train(
            Self.job + ["--resume-from", dir + "/a/" + Checkpoint.fileName, "--checkpoint-every", "0"], tag: "ckpt-b"
        ) { out in
            let end = try counters(out + "/" + Checkpoint.fileName)
            #expect(end.samples == CheckpointTests.epochs * 60_000, "samples \(end.samples)")
            // The step counts went on from the checkpoint's: together they are one step per
            // batch of the whole budget (the last may be short), as in one uninterrupted run.
            let steps = end.steps.reduce(0, +)
            let budget = (CheckpointTests.epochs * 60_000 + 15) / 16
            #expect(steps == budget, "steps \(end.steps), stopped at \(stopped.steps)")
            #expect(zip(end.steps, stopped.steps).allSatisfy { $0 > $1 })
        }
        #expect(s.outcome == "completed")
        let all = CheckpointTests.epochs * 60_000
        #expect(s.samples == all, "summary samples \(s.samples)")
        #expect((s.testAccuracy ?? 0) >= 0.85, "accuracy \(s.testAccuracy ?? 0)")
    }

    @Test func aCheckpointOfAnotherShapeOrASynchronousAlgorithmIsRefused() throws {
        let dir = try TestSupport.temporaryDirectory("ckpt-bad")
        defer { TestSupport.removeTemporaryDirectory(dir) }
        _ = try train(Self.job + ["--epochs", "0.2", "--checkpoint-every", "0"], tag: "ckpt-src") { out in
            try FileManager.default.copyItem(atPath: out + "/" + Checkpoint.fileName, toPath: dir + "/c.safetensors")
        }
        let other = try runProgram(
            TestSupport.binary("lapwing"),
            ["run", "--output-dir", dir + "/o", "--resume-from", dir + "/c.safetensors"]
                + Self.job.map { $0 == "mlp:784-64-10" ? "mlp:784-32-10" : $0 })
        #expect(other.status == 1)
        #expect(other.stderr.contains("c.safetensors: metadata field \"model\" is mlp:784-64-10, this job has mlp:784-32-10"), "\(other.stderr)")
        let sync = try runProgram(
            TestSupport.binary("lapwing"),
            ["run", "--output-dir", dir + "/s", "--resume-from", dir + "/c.safetensors"]
                + Self.job.map { $0 == "lap-sgd" ? "local-sgd" : $0 })
        #expect(sync.status == 2)
        #expect(sync.stderr.contains("local-sgd is synchronous"), "\(sync.stderr)")
    }

    /// The yardstick is the first loss of the slot, not of its latest process.
    @Test func aReplacementKeepsTheFirstLossAsTheYardstick() throws {
        let shared = try SharedState(
            jobID: "ckpt-first-\(getpid())", parameterCount: 16, replicaNodes: [0], workers: 1, needs: ArenaNeeds(),
            workerReplicas: [0])
        defer { shared.remove() }
        shared.recordFirstLoss(slot: 0, loss: 2.3)
        shared.recordFirstLoss(slot: 0, loss: 0.001)
        #expect(Float(bitPattern: shared.firstLossBits(slot: 0)) == 2.3)
    }
}
}
