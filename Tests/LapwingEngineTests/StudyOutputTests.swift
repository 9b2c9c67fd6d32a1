import Foundation
import LapwingJob
import Testing

@testable import LapwingStudy

/// The study's table and plots from jobs' results: CSV fields quoted where they must be, a
/// log axis on powers of ten, and a job without bytes named in the legend instead of drawn.
@Suite struct StudyOutputTests {
    func job(_ algorithm: String, settings: String, bytes: Int, accuracies: [Double]) -> StudyJob {
        var summary = JobSummary(
            job: "j", outcome: "completed", algorithm: algorithm, model: "softmax", data: "idx:/d", workers: 2, replicas: 1,
            batch: 16, epochs: 1, samples: 100, trainSeconds: 2, samplesPerSecond: 50, testAccuracy: accuracies.last, testRows: 10,
            averagingRounds: 3, averagingBytes: bytes, averagingSeconds: 0, blas: "")
        summary.bytesExchanged = bytes
        let events = accuracies.enumerated().map { i, a in
            var e = HostEvent(.evaluation, job: "j")
            e.elapsed = Double(i + 1)
            e.epoch = Double(i + 1) / 4
            e.testAccuracy = a
            e.trainLoss = 1 / Double(i + 1)
            e.bytesExchanged = bytes * (i + 1) / accuracies.count
            return e
        }
        return StudyJob(label: algorithm, algorithm: algorithm, settings: settings, summary: summary, evaluations: events)
    }

    @Test func theCSVQuotesKnobsWithCommasAndTheBestAccuracyIsTheMaximum() {
        let jobs = [job("a", settings: "compress=qsgd,qsgd-bits=4", bytes: 1000, accuracies: [0.5, 0.8, 0.7])]
        let csv = StudyTable.csv(jobs).split(separator: "\n")
        #expect(csv[1] == "1,a,\"compress=qsgd,qsgd-bits=4\",0.7000,0.8000,2.000,50.0,1000,3,completed")
        #expect(StudyTable.markdown(jobs).contains("| 1 | a | compress=qsgd,qsgd-bits=4 | 70.00 | 80.00 | 2.00 | 50 | 1 kB | 3 | completed |"))
        #expect(StudyTable.quote("plain words") == "plain words")
        #expect(StudyTable.quote("a,\"b\"") == "\"a,\"\"b\"\"\"")
    }

    @Test func ticksAreRoundAndTheLogAxisIsOnPowersOfTen() {
        #expect(SVGPlot.linearTicks(81.3, 88.9) == [80, 82, 84, 86, 88, 90])
        #expect(SVGPlot.logTicks(2.4e7, 1.5e10) == [1e7, 1e8, 1e9, 1e10, 1e11])
        #expect(SVGPlot.logTicks(3e4, 7e4) == [1e4, 2e4, 5e4, 1e5])
        #expect(StudyFormat.bytes(1.5e10) == "15 GB" && StudyFormat.bytes(3808) == "3.8 kB" && StudyFormat.bytes(0) == "0 B")
    }

    @Test func aJobWithoutBytesIsNamedNotDrawnOnTheLogAxis() {
        let jobs = [
            job("hogwild", settings: "", bytes: 0, accuracies: [0.8, 0.85]),
            job("local<sgd>", settings: "period=4", bytes: 5_000_000, accuracies: [0.8, 0.86]),
        ]
        let plots = StudyPlots.plots(jobs, title: "t")
        #expect(plots.map(\.file) == StudyPlots.files)
        let bytes = plots[2].plot.svg()
        #expect(bytes.components(separatedBy: "<polyline").count - 1 == 1)
        #expect(bytes.contains(">hogwild (no bytes)<") && bytes.contains(">local&lt;sgd&gt;<"))
        let time = plots[0].plot.svg()
        #expect(time.components(separatedBy: "<polyline").count - 1 == 2)
        // One colour per algorithm.
        #expect(time.contains("stroke=\"#4e79a7\"") && time.contains("stroke=\"#f28e2b\""))
    }
}
