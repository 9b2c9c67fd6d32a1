import Foundation
import LapwingJob
import LapwingEngine
import LapwingTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Jobs that used to train silent nonsense (issue #8, point 8) are refused with the reason, or
/// fail with it, through `lapwing run` and a real job host.
extension JobTests {
@Suite struct TrainingSanityTests {
    /// A directory for one test's data and output, removed at the end.
    final class Scratch {
        let dir: String
        init(_ tag: String) throws { dir = try TestSupport.temporaryDirectory(tag) }
        deinit { TestSupport.removeTemporaryDirectory(dir) }

        @discardableResult
        func write(_ name: String, _ text: String) -> String {
            let p = dir + "/" + name
            _ = FileManager.default.createFile(atPath: p, contents: Data(text.utf8))
            return p
        }

        /// `lapwing run --json` with `arguments`: exit status, the summary if one was printed, stderr.
        func run(_ arguments: [String], tag: String = "sanity") throws -> (status: Int32, summary: JobSummary?, stderr: String) {
            let r = try runProgram(
                TestSupport.binary("lapwing"),
                ["run", "--json", "--output-dir", dir + "/out-\(tag)", "--job-id", TestSupport.jobID(tag)] + arguments,
                timeout: 300)
            let summary = r.stdout.split(separator: "\n").last.flatMap {
                try? JSONDecoder().decode(JobSummary.self, from: Data($0.utf8))
            }
            return (r.status, summary, r.stderr)
        }
    }

    /// Rows of `features` values in [0, 1] whose label is `label(i)`.
    static func csv(rows: Int, features: Int, label: (Int) -> String) -> String {
        (0..<rows).map { i in
            ([label(i)] + (0..<features).map { j in String(Float((i * 7 + j * 13) % 17) / 16) }).joined(separator: ",")
        }.joined(separator: "\n") + "\n"
    }

    @Test func binaryModelsRefuseLabelsThatAreNotTwoValues() throws {
        let s = try Scratch("labels")
        let frac = s.write("frac.csv", Self.csv(rows: 40, features: 3) { ["0", "1.5", "2.8"][$0 % 3] })
        let r1 = try s.run(["--data", "csv:\(frac)", "--model", "logistic", "--workers", "1", "--epochs", "1"])
        #expect(r1.status == 1)
        #expect(
            r1.stderr.contains(
                "\(frac):2: a label that is neither -1, 0 nor 1: model 'logistic' is binary and needs two label values, -1/+1 or 0/1"),
            "\(r1.stderr)")
        let three = s.write("three.svm", (0..<40).map { "\(["-1", "0", "1"][$0 % 3]) 1:\($0 % 5)" }.joined(separator: "\n"))
        let r2 = try s.run(["--data", "libsvm:\(three)", "--model", "svm", "--workers", "1", "--epochs", "1"])
        #expect(r2.status == 1)
        #expect(
            r2.stderr.contains("\(three):2: a label 0 after labels -1 (one set: -1/+1 or 0/1): model 'svm' is binary"),
            "\(r2.stderr)")
    }

    @Test func aSingleClassIsRefused() throws {
        let s = try Scratch("oneclass")
        let ones = s.write("ones.csv", Self.csv(rows: 40, features: 3) { _ in "1" })
        let r1 = try s.run(["--data", "csv:\(ones)", "--model", "logistic", "--workers", "1", "--epochs", "1"])
        #expect(r1.status == 1)
        #expect(r1.stderr.contains("\(ones): only one class: all 40 training labels are the same"), "\(r1.stderr)")
        let threes = s.write("threes.csv", Self.csv(rows: 40, features: 3) { _ in "3" })
        let r2 = try s.run(["--data", "csv:\(threes)", "--model", "softmax", "--workers", "1", "--epochs", "1"])
        #expect(r2.status == 1)
        #expect(r2.stderr.contains("only one class"), "\(r2.stderr)")
    }

    @Test func softmaxNamesTheLineOfALabelThatIsNotAClass() throws {
        let s = try Scratch("softmax")
        let real = s.write("real.csv", Self.csv(rows: 40, features: 3) { $0 == 5 ? "2.25" : String($0 % 3) })
        let r = try s.run(["--data", "csv:\(real)", "--model", "softmax", "--workers", "1", "--epochs", "1"])
        #expect(r.status == 1)
        #expect(
            r.stderr.contains("\(real):6: a fractional label: model 'softmax' needs class labels (non-negative integers)"),
            "\(r.stderr)")
    }

    @Test func theFirstWidthOfAnMLPMustBeTheDatasFeatures() throws {
        let s = try Scratch("width")
        let data = s.write("w.csv", Self.csv(rows: 60, features: 20) { String($0 % 3) })
        let r = try s.run(["--data", "csv:\(data)", "--model", "mlp:8-3", "--workers", "1", "--epochs", "1"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("model 'mlp:8-3': its first width, 8, is the input, but the data has 20 features"), "\(r.stderr)")
        // With the ends left to the data, the same hidden layer trains.
        let ok = try s.run(["--data", "csv:\(data)", "--model", "mlp:_-8-_", "--workers", "1", "--epochs", "1"], tag: "w2")
        #expect(ok.status == 0 && ok.summary?.outcome == "completed", "\(ok.stderr)")
    }

    /// Raw 0-255 pixels (784 of them, as MNIST's) and a step too large for them: the loss blows
    /// up (past a hundred times its first value, or to NaN; at the default rate the MLP's loss
    /// climbs from about 36 to 8000 and stays finite). The job fails and says why,
    /// instead of exiting 0 with a dead or NaN model. One worker, so the run is the same each time.
    @Test(arguments: [("mlp:_-128-_", "1.0"), ("mlp:_-128-_", "0.02"), ("leastsquares", "0.5")])
    func divergenceFailsTheJobWithTheReason(model: String, lr: String) throws {
        let s = try Scratch("diverge")
        let rows = (0..<300).map { i in
            ([String(i % 4)] + (0..<784).map { j in String((i * 31 + j * 57) % 256) }).joined(separator: ",")
        }
        let data = s.write("raw.csv", rows.joined(separator: "\n") + "\n")
        let r = try s.run(["--data", "csv:\(data)", "--model", model, "--workers", "1", "--epochs", "5", "--lr", lr])
        #expect(r.status == 1, "\(model): exit \(r.status): \(r.stderr)")
        let summary = try #require(r.summary, "\(model): no summary: \(r.stderr)")
        #expect(summary.outcome == "failed")
        let reason = summary.reason ?? ""
        #expect(reason.hasPrefix("training diverged: worker 0's loss "), "\(model): \(reason)")
        #expect(
            ["is NaN", "is infinite", "(more than a hundred times)"].contains { reason.contains($0) }, "\(reason)")
        #expect(reason.contains(" at its step ") && reason.contains(", epoch "), "\(reason)")
        #expect(reason.hasSuffix("; lower --lr (\(lr) now) or scale the features (e.g. to [0, 1])"), "\(reason)")
        #expect(summary.modelPath == nil, "a diverged model is not written")
    }

    /// The workers together train exactly epochs x rows samples, however small the data and
    /// however many workers ask for a batch at the end.
    @Test(arguments: [(30, "1", 24), (30, "2.5", 60), (270, "3", 648)])
    func epochsAreExactOnSmallData(rows: Int, epochs: String, samples: Int) throws {
        let s = try Scratch("epochs")
        let data =
            rows == 270
            ? "libsvm:/usr/share/doc/liblinear-tools/examples/heart_scale"
            : "csv:" + s.write("tiny.csv", Self.csv(rows: rows, features: 4) { String($0 % 2) })
        // 20% held out: 24 of 30 rows train, 216 of 270.
        let r = try s.run(["--data", data, "--model", "logistic", "--workers", "2", "--batch", "16", "--epochs", epochs])
        #expect(r.status == 0, "\(r.stderr)")
        let summary = try #require(r.summary)
        #expect(summary.samples == samples, "\(rows) rows, \(epochs) epochs: \(summary.samples) samples")
        #expect(summary.epochs == Double(epochs), "\(summary.epochs) epochs")
    }
}
}
