import Foundation
import LapwingJob
import LapwingTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension DaemonTests {
    /// `lapwing study` through the daemon (issue #12): a sweep of a run option, each job queued
    /// and followed, its metrics exported into the study; Ctrl-C cancels the running job and
    /// keeps the table of what finished.
    @Suite struct StudyThroughTheDaemon {
        static let heartScale = "libsvm:/usr/share/doc/liblinear-tools/examples/heart_scale"

        @Test func ctrlCKeepsWhatFinishedAndCancelsTheRunningJob() throws {
            let d = try DaemonHarness(tag: "study")
            defer { d.cleanUp() }
            try d.start()
            let out = d.dir + "/study"
            // The second job would train for minutes: it is still running when Ctrl-C comes.
            let study = try SpawnedProcess(
                "/usr/bin/env",
                ["XDG_RUNTIME_DIR=\(d.runtime)", try TestSupport.binary("lapwing"), "study", "--socket", d.socket, "--data",
                 Self.heartScale, "--model", "logistic", "--algorithms", "minibatch", "--workers", "2", "--lr", "0.1",
                 "--sweep", "epochs=200,100000", "--data-split", "label-skew:0.5", "--eval-every", "20", "--output-dir", out],
                outputIn: d.dir)
            let deadline = Date().addingTimeInterval(120)
            var csv: [String] = []
            while Date() < deadline && study.wait(timeout: 0.1) == nil {
                csv = ((try? String(contentsOfFile: out + "/table.csv", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
                if csv.count == 2 && study.stderr.contains("[2/2 minibatch epochs=100000] epoch") { break }
            }
            #expect(csv.count == 2, "the first job's row: \(csv) \(study.stderr)")
            study.signalGroup(SIGINT)
            let status = study.wait(timeout: 60)
            #expect(status == 130, "study exited \(String(describing: status)): \(study.stderr)")
            csv = try String(contentsOfFile: out + "/table.csv", encoding: .utf8).split(separator: "\n").map(String.init)
            #expect(csv.count == 3, "\(csv)")
            let rows = csv.dropFirst().map { $0.split(separator: ",").map(String.init) }
            #expect(rows.first?[2].hasPrefix("epochs=200 data-split=label-skew:0.5") == true, "\(rows)")
            #expect(rows.first?.last == "completed" && rows.last?.last == "interrupted", "\(rows)")
            #expect((Double(rows.first?[3] ?? "") ?? 0) >= 0.7, "\(rows)")
            let metrics = try String(contentsOfFile: out + "/jobs/01-minibatch-epochs-200/metrics.jsonl", encoding: .utf8)
            #expect(metrics.contains("\"event\":\"evaluation\""))
            for plot in ["accuracy-vs-time.svg", "accuracy-vs-epochs.svg", "accuracy-vs-bytes.svg", "loss-vs-time.svg"] {
                #expect(FileManager.default.fileExists(atPath: out + "/" + plot), "\(plot)")
            }
            let list = try d.cli(["list", "--json"])
            let jobs = try decode([JobRecord].self, list.stdout)
            #expect(jobs.map(\.state) == [.succeeded, .cancelled], "\(jobs.map(\.state))")
            #expect(jobs.first?.spec.dataSplit == .labelSkew(alpha: 0.5))
        }
    }
}
