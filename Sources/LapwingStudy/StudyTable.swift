/// The study's table (issue #12): one row per job, as markdown and as CSV.
public enum StudyTable {
    static let header = [
        "job", "algorithm", "knobs", "final test accuracy (%)", "best test accuracy (%)", "wall time (s)", "samples/s",
        "bytes exchanged", "rounds", "outcome",
    ]
    static let csvHeader = [
        "job", "algorithm", "knobs", "final_test_accuracy", "best_test_accuracy", "wall_seconds", "samples_per_second",
        "bytes_exchanged", "rounds", "outcome",
    ]

    public static func markdown(_ jobs: [StudyJob]) -> String {
        var lines = ["| " + header.joined(separator: " | ") + " |", "|" + String(repeating: "---|", count: header.count)]
        for (i, j) in jobs.enumerated() {
            let cells = row(j, number: i + 1, csv: false).map { $0.replacingOccurrences(of: "|", with: "\\|") }
            lines.append("| " + cells.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public static func csv(_ jobs: [StudyJob]) -> String {
        var lines = [csvHeader.joined(separator: ",")]
        for (i, j) in jobs.enumerated() { lines.append(row(j, number: i + 1, csv: true).map(quote).joined(separator: ",")) }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One job's cells: for the CSV fractions and plain numbers (empty when unknown), for the
    /// markdown percentages, SI bytes and "-".
    static func row(_ j: StudyJob, number: Int, csv: Bool) -> [String] {
        let none = csv ? "" : "-"
        func cell(_ v: Double?, _ digits: Int, scale: Double = 1) -> String {
            guard let v else { return none }
            return StudyFormat.fixed(v * scale, digits)
        }
        let accuracyScale = csv ? 1.0 : 100.0, accuracyDigits = csv ? 4 : 2
        var cells: [String] = ["\(number)", j.algorithm, j.settings.isEmpty ? none : j.settings]
        cells.append(cell(j.summary?.testAccuracy, accuracyDigits, scale: accuracyScale))
        cells.append(cell(j.bestAccuracy, accuracyDigits, scale: accuracyScale))
        cells.append(cell(j.summary?.trainSeconds, csv ? 3 : 2))
        cells.append(cell(j.summary?.samplesPerSecond, csv ? 1 : 0))
        if let s = j.summary {
            let bytes: Int = s.bytesExchanged ?? s.averagingBytes
            cells.append(csv ? "\(bytes)" : StudyFormat.bytes(Double(bytes)))
            cells.append("\(s.averagingRounds)")
            cells.append(s.outcome)
        } else {
            cells += [none, none, none]
        }
        return cells
    }

    /// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
    static func quote(_ s: String) -> String {
        guard s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
