import Foundation
import LapwingTestSupport
import Testing

/// `lapwing-numa tune` end to end: real trial runs of `lapwing run` on Fashion-MNIST within a
/// small budget, a job file written, and `lapwing run --config` training what it chose.
@Suite struct TuneTests {
    @Test func tuneWritesAJobFileThatRunTrains() throws {
        let dir = try TestSupport.temporaryDirectory("tune")
        defer { TestSupport.removeTemporaryDirectory(dir) }
        let numa = try TestSupport.binary("lapwing-numa"), lapwing = try TestSupport.binary("lapwing")
        let conf = dir + "/tuned.conf"
        let tune = try runProgram(
            numa,
            [
                "tune", "--json", "--budget", "25", "--output", conf, "--lapwing", lapwing, "--data",
                "idx:/usr/share/datasets/fashion-mnist", "--model", "softmax", "--epochs", "1", "--batch", "32",
            ], timeout: 300)
        #expect(tune.status == 0, "\(tune.stderr)")
        let report = try #require(
            JSONSerialization.jsonObject(with: Data(tune.stdout.utf8)) as? [String: Any], "not JSON: \(tune.stdout)")
        let trials = try #require(report["trials"] as? [[String: Any]])
        #expect(trials.count >= 3, "\(trials)")
        // The job as given ran and scored; whatever was chosen learned as much per sample.
        let asGiven = try #require(report["as_given"] as? String)
        #expect(asGiven.hasPrefix("lap-sgd, 2 workers") || asGiven.hasPrefix("lap-sgd, 1 worker"), "\(asGiven)")
        #expect(trials.contains { ($0["score"] as? Double ?? 0) > 0 })
        let chosen = try #require(report["chosen"] as? String)
        if chosen != asGiven {
            #expect((report["speedup"] as? Double ?? 0) > 1.05, "\(report)")
        }
        #expect(tune.stderr.contains("tune: [") && tune.stderr.contains("layouts"), "progress lines: \(tune.stderr)")
        // The file stands alone: run trains the chosen configuration from it.
        let text = try String(contentsOfFile: conf, encoding: .utf8)
        #expect(text.contains("[Job]\ndata = idx:/usr/share/datasets/fashion-mnist\nmodel = softmax\n"), "\(text)")
        let run = try runProgram(lapwing, ["run", "--config", conf, "--epochs", "0.05", "--json", "--output-dir", dir + "/run"])
        #expect(run.status == 0, "\(run.stderr)")
        let summary = try #require(
            JSONSerialization.jsonObject(with: Data((run.stdout.split(separator: "\n").last ?? "").utf8)) as? [String: Any])
        #expect(chosen.hasPrefix("\(summary["algorithm"] ?? "?"), \(summary["workers"] ?? "?") worker"), "\(chosen) vs \(summary)")
        #expect(summary["batch"] as? Int == (chosen.contains("batch 64") ? 64 : 32))
    }

    @Test func tuneRefusesABadBudgetAndABadJob() throws {
        let numa = try TestSupport.binary("lapwing-numa")
        let budget = try runProgram(numa, ["tune", "--budget", "1", "--data", "idx:/x", "--model", "softmax"])
        #expect(budget.status == 2 && budget.stderr.contains("--budget 1.0: give 10 to 86400 seconds"), "\(budget.stderr)")
        let job = try runProgram(numa, ["tune", "--data", "idx:/x", "--model", "softmax", "--workers", "0"])
        #expect(job.status == 2 && job.stderr.contains("--workers"), "\(job.stderr)")
    }
}
