import LapwingCore

/// Comma-separated values (plain or gzipped): one example per line, every field a number,
/// one column the label; an optional header line (detected when its fields are not numbers,
/// or declared); CRLF line endings are fine. Rows are stored dense.
public enum CSVReader {
    public struct Options: Sendable, Equatable {
        /// The label column, 0-based.
        public var labelColumn: Int
        /// The label column by header name (needs a header); wins over `labelColumn`.
        public var labelName: String?
        /// nil: a first line whose fields are not all numbers is a header.
        public var hasHeader: Bool?
        public var delimiter: UInt8
        public var labels: LabelOptions

        public init(
            labelColumn: Int = 0, labelName: String? = nil, hasHeader: Bool? = nil, delimiter: UInt8 = 0x2C,
            labels: LabelOptions = LabelOptions()
        ) {
            self.labelColumn = labelColumn
            self.labelName = labelName
            self.hasHeader = hasHeader
            self.delimiter = delimiter
            self.labels = labels
        }
    }

    public static func load(path: String, options: Options = Options()) throws(LapwingError) -> Dataset {
        let file = try InputFile(path)
        let b = file.bytes
        var lines = LineCursor(b)
        var scratch = [CChar](repeating: 0, count: 64)
        var x: [Float] = []
        var labels: [Float] = []
        var fieldCount: Int?
        var labelColumn = options.labelColumn
        var fields: [Range<Int>] = []
        var sawFirst = false

        func split(_ line: Range<Int>) {
            fields.removeAll(keepingCapacity: true)
            var s = line.lowerBound
            for k in line where b[k] == options.delimiter {
                fields.append(trim(s..<k))
                s = k + 1
            }
            fields.append(trim(s..<line.upperBound))
        }
        func trim(_ r: Range<Int>) -> Range<Int> {
            var lo = r.lowerBound, hi = r.upperBound
            while lo < hi && (b[lo] == 0x20 || b[lo] == 0x09) { lo += 1 }
            while hi > lo && (b[hi - 1] == 0x20 || b[hi - 1] == 0x09) { hi -= 1 }
            return lo..<hi
        }

        while let line = lines.next() {
            if trim(line).isEmpty { continue }
            split(line)
            if !sawFirst {
                sawFirst = true
                let numeric = fields.allSatisfy { Numbers.float(b, $0, scratch: &scratch) != nil }
                if options.hasHeader ?? !numeric {
                    let names = fields.map { String(decoding: UnsafeBufferPointer(rebasing: b[$0]), as: UTF8.self) }
                    if let want = options.labelName {
                        guard let k = names.firstIndex(of: want) else {
                            throw LapwingError(
                                .invalidArgument, "\(path):\(lines.lineNumber): no column named '\(want)' in the header",
                                detail: "columns: \(names.prefix(20).joined(separator: ", "))")
                        }
                        labelColumn = k
                    }
                    fieldCount = fields.count
                    guard labelColumn < fields.count else {
                        throw LapwingError(
                            .invalidArgument,
                            "\(path):\(lines.lineNumber): label column \(labelColumn) is out of range (the header has \(fields.count) columns)")
                    }
                    continue
                }
                if options.labelName != nil {
                    throw LapwingError(
                        .invalidArgument, "\(path):\(lines.lineNumber): a label column by name needs a header line")
                }
            }
            if let n = fieldCount {
                guard fields.count == n else {
                    throw LapwingError(.invalidData, "\(path):\(lines.lineNumber): \(fields.count) fields, expected \(n)")
                }
            } else {
                fieldCount = fields.count
                guard labelColumn < fields.count else {
                    throw LapwingError(
                        .invalidArgument,
                        "\(path):\(lines.lineNumber): label column \(labelColumn) is out of range (the row has \(fields.count) fields)")
                }
                guard fields.count >= 2 else {
                    throw LapwingError(.invalidData, "\(path):\(lines.lineNumber): only one field: no features besides the label")
                }
            }
            for (k, f) in fields.enumerated() {
                guard let v = Numbers.float(b, f, scratch: &scratch) else {
                    throw LapwingError(
                        .invalidData,
                        "\(path):\(lines.lineNumber): field \(k + 1): '\(Numbers.text(b, f))' is not a number")
                }
                guard v.isFinite, Float(v).isFinite else {
                    throw LapwingError(
                        .invalidData,
                        "\(path):\(lines.lineNumber): field \(k + 1): \(Numbers.text(b, f)) is not finite (NaN and Inf are not allowed)")
                }
                if k == labelColumn { labels.append(Float(v)) } else { x.append(Float(v)) }
            }
        }
        guard !labels.isEmpty, let n = fieldCount else {
            throw LapwingError(.invalidData, "\(path): empty file (no examples)")
        }
        let kind = options.labels.resolve(&labels)
        return Dataset(dense: x, cols: n - 1, labels: labels, labelKind: kind, source: path)
    }
}
