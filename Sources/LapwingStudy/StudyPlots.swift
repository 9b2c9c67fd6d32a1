import Foundation
import LapwingCore
import LapwingJob

/// The study's four plots (issue #12) from its jobs' evaluations: test accuracy against wall
/// time, against epochs and against bytes exchanged (log scale), and training loss against
/// wall time. One colour per algorithm; jobs of the same algorithm differ by their dashes.
public enum StudyPlots {
    /// The file names, in the order written.
    public static let files = ["accuracy-vs-time.svg", "accuracy-vs-epochs.svg", "accuracy-vs-bytes.svg", "loss-vs-time.svg"]

    /// Tableau 10: distinct for the colour-blind, readable on white.
    static let palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]
    static let dashes = ["", "7 4", "2 3", "9 3 2 3", "1 4", "12 6"]

    public static func plots(_ jobs: [StudyJob], title: String) -> [(file: String, plot: SVGPlot)] {
        var algorithms: [String] = []
        var seen: [String: Int] = [:]
        var style: [(colour: String, dash: String)] = []
        for j in jobs {
            if !algorithms.contains(j.algorithm) { algorithms.append(j.algorithm) }
            let a = algorithms.firstIndex(of: j.algorithm) ?? 0
            let k = seen[j.algorithm, default: 0]
            seen[j.algorithm] = k + 1
            style.append((palette[a % palette.count], dashes[k % dashes.count]))
        }
        func series(_ x: (HostEvent) -> Double?, _ y: (HostEvent) -> Double?) -> [SVGPlot.Series] {
            zip(jobs, style).map { j, s in
                let points = j.evaluations.compactMap { e -> (x: Double, y: Double)? in
                    guard let a = x(e), let b = y(e) else { return nil }
                    return (a, b)
                }
                return SVGPlot.Series(label: j.label, colour: s.colour, dash: s.dash, points: points)
            }
        }
        let accuracy: (HostEvent) -> Double? = { $0.testAccuracy.map { $0 * 100 } }
        var bytes = SVGPlot(
            title: "\(title): test accuracy against bytes exchanged", xLabel: "bytes exchanged (log scale)",
            yLabel: "test accuracy (%)", logX: true, series: series({ $0.bytesExchanged.map(Double.init) }, accuracy))
        bytes.xTick = { StudyFormat.bytes($0) }
        return [
            (files[0], SVGPlot(title: "\(title): test accuracy against wall time", xLabel: "wall time (s)", yLabel: "test accuracy (%)", series: series({ $0.elapsed }, accuracy))),
            (files[1], SVGPlot(title: "\(title): test accuracy against epochs", xLabel: "epochs", yLabel: "test accuracy (%)", series: series({ $0.epoch }, accuracy))),
            (files[2], bytes),
            (files[3], SVGPlot(title: "\(title): training loss against wall time", xLabel: "wall time (s)", yLabel: "training loss (mean over workers)", series: series({ $0.elapsed }, { $0.trainLoss }))),
        ]
    }

    /// Writes the plots into `dir` (each atomically); returns their paths.
    @discardableResult
    public static func write(_ jobs: [StudyJob], title: String, into dir: String) throws(LapwingError) -> [String] {
        var paths: [String] = []
        for (file, plot) in plots(jobs, title: title) {
            let path = dir + "/" + file
            try AtomicFile.write(to: path, bytes: Array(plot.svg().utf8))
            paths.append(path)
        }
        return paths
    }
}
