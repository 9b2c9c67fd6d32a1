import Foundation
import LapwingEngine
import LapwingJob
import LapwingTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

let fashionMNIST = "idx:/usr/share/datasets/fashion-mnist"
let heartScale = "libsvm:/usr/share/doc/liblinear-tools/examples/heart_scale"

/// Runs `lapwing run ... --json` to completion and decodes its summary; `inspect` sees the
/// output directory before it is removed.
func train(_ arguments: [String], tag: String, inspect: (String) throws -> Void = { _ in }) throws -> JobSummary {
    let dir = try TestSupport.temporaryDirectory(tag)
    defer { TestSupport.removeTemporaryDirectory(dir) }
    let r = try runProgram(
        TestSupport.binary("lapwing"), ["run", "--json", "--output-dir", dir + "/out", "--job-id", TestSupport.jobID(tag)] + arguments)
    guard r.status == 0, let line = r.stdout.split(separator: "\n").last else {
        throw TestFailure("lapwing run exited \(r.status): \(r.stderr)")
    }
    let summary = try JSONDecoder().decode(JobSummary.self, from: Data(line.utf8))
    #expect(FileManager.default.fileExists(atPath: dir + "/out/model.safetensors"))
    #expect(FileManager.default.fileExists(atPath: dir + "/out/metrics.jsonl"))
    #expect(!FileManager.default.fileExists(atPath: "/dev/shm/lapwing.\(summary.job)"), "arena left behind")
    try inspect(dir + "/out")
    return summary
}

/// Every test that runs training jobs, one job at a time (the machine has two cores).
@Suite(.serialized) struct JobTests {}

/// Accuracy on real data with fixed seeds (issue #3's acceptance).
extension JobTests {
@Suite struct TrainingJobTests {
    @Test func heartScaleLogisticRegression() throws {
        let s = try train(["--data", heartScale, "--model", "logistic", "--workers", "2", "--epochs", "30", "--lr", "0.1"], tag: "heart")
        #expect(s.outcome == "completed")
        #expect(s.testRows == 54)
        #expect((s.testAccuracy ?? 0) >= 0.80, "heart_scale logistic: \(s.testAccuracy ?? 0)")
    }

    @Test func fashionMNISTSoftmaxLapSGD() throws {
        let s = try train(
            ["--data", fashionMNIST, "--model", "softmax", "--algorithm", "lap-sgd", "--workers", "2", "--replicas", "2",
             "--epochs", "5", "--lr", "0.05"], tag: "softmax")
        #expect(s.outcome == "completed" && s.replicas == 2 && s.testRows == 10000)
        #expect(s.averagingRounds > 0)
        #expect((s.testAccuracy ?? 0) >= 0.82, "Fashion-MNIST softmax: \(s.testAccuracy ?? 0)")
    }

    /// The exported model loads in Python (numpy + safetensors) and scores what Lapwing reported.
    @Test func exportedModelReproducesTheAccuracyInPython() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        var python: (status: Int32, stdout: String, stderr: String)?
        let s = try train(
            ["--data", fashionMNIST, "--model", "mlp:784-64-10", "--workers", "2", "--replicas", "2", "--epochs", "1"],
            tag: "export"
        ) { out in
            python = try runProgram(
                "/usr/bin/env", ["python3", repo + "/tools/eval_model.py", out + "/model.safetensors", "--data", fashionMNIST])
        }
        let r = try #require(python)
        #expect(r.status == 0, "eval_model.py: \(r.stderr)")
        let result = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let accuracy = try #require(result?["accuracy"] as? Double)
        #expect(abs(accuracy - (s.testAccuracy ?? -1)) <= 0.001, "python \(accuracy), lapwing \(s.testAccuracy ?? -1)")
        #expect(result?["rows"] as? Int == 10000)
    }

    @Test func fashionMNISTMLPLapSGDAndHogwild() throws {
        let common = ["--data", fashionMNIST, "--model", "mlp:784-256-10", "--workers", "2", "--epochs", "10", "--lr", "0.02", "--nesterov"]
        let lap = try train(common + ["--algorithm", "lap-sgd", "--replicas", "2"], tag: "mlp-lap")
        #expect(lap.outcome == "completed" && lap.averagingRounds > 0)
        // Asynchronous runs differ with the scheduling: 88.2-89.0% measured for lap-sgd on this
        // 2-core VM when quiet, down to 86.8% at load average 10 (when one worker's replica runs
        // ahead of the other's between rounds); hogwild 88.8-89.0%. Softmax regression, the
        // model below this one, ends near 84%.
        #expect((lap.testAccuracy ?? 0) >= 0.86, "lap-sgd mlp: \(lap.testAccuracy ?? 0)")
        let hog = try train(common + ["--algorithm", "hogwild"], tag: "mlp-hog")
        #expect(hog.outcome == "completed" && hog.replicas == 1)
        #expect(abs((hog.testAccuracy ?? 0) - (lap.testAccuracy ?? 0)) <= 0.03, "hogwild \(hog.testAccuracy ?? 0) vs lap-sgd \(lap.testAccuracy ?? 0)")
    }
}
}
