import CLapwing
import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// Options of the CSV reader.
public struct CSVOptions: Sendable, Equatable {
    /// Which column holds the label.
    public enum LabelColumn: Sendable, Equatable {
        /// 0-based; negative counts from the end (-1 is the last column).
        case index(Int)
        /// A name in the header row.
        case name(String)
    }

    public var labelColumn: LabelColumn
    /// nil: auto-detect (a first row with a non-numeric field is a header).
    public var hasHeader: Bool?
    public var delimiter: UInt8
    public var labels: LabelOptions
    /// The most bytes read from the file (nil: `ReadLimit.defaultBytes`).
    public var maxBytes: Int?

    public init(
        labelColumn: LabelColumn = .index(0), hasHeader: Bool? = nil, delimiter: UInt8 = UInt8(ascii: ","),
        labels: LabelOptions = LabelOptions(), maxBytes: Int? = nil
    ) {
        self.labelColumn = labelColumn
        self.hasHeader = hasHeader
        self.delimiter = delimiter
        self.labels = labels
        self.maxBytes = maxBytes
    }
}

/// Reads CSV files (plain or gzipped) into dense data sets: one example per line, one column is
/// the label, the others the features. Blank lines are skipped, CRLF line ends accepted, fields
/// may be double-quoted. Errors name the file and the 1-based line.
public enum CSVReader {
    public static func load(path: String, options: CSVOptions = CSVOptions()) throws(LapwingError) -> Dataset {
        let input = try InputBytes.open(path: path, limit: options.maxBytes)
        return try parse(base: input.base, count: input.count, name: input.name, options: options)
    }

    /// Loads from an open descriptor (read from its current offset; it stays open), naming it `name`.
    public static func load(fd: Int32, name: String, options: CSVOptions = CSVOptions()) throws(LapwingError)
        -> Dataset
    {
        let input = try InputBytes.read(fd: fd, name: name, limit: options.maxBytes)
        return try parse(base: input.base, count: input.count, name: input.name, options: options)
    }

    /// One field of a line: its bytes (quotes removed) and whether it was quoted.
    struct Field {
        var start: Int
        var count: Int
    }

    /// Splits the line `b[from..<end]` into `fields`; returns false on an unterminated quote.
    @inline(__always)
    static func split(
        _ b: UnsafePointer<UInt8>, from: Int, end: Int, delimiter: UInt8, trim: Bool, into fields: inout [Field]
    ) -> Bool {
        fields.removeAll(keepingCapacity: true)
        var p = from
        while true {
            if trim { while p < end && (b[p] == UInt8(ascii: " ") || b[p] == UInt8(ascii: "\t")) { p += 1 } }
            var s = p
            var e: Int
            if p < end && b[p] == UInt8(ascii: "\"") {
                s = p + 1
                p = s
                while true {
                    while p < end && b[p] != UInt8(ascii: "\"") { p += 1 }
                    if p == end { return false }
                    if p + 1 < end && b[p + 1] == UInt8(ascii: "\"") {
                        p += 2
                        continue
                    }
                    break
                }
                e = p
                p += 1
                while p < end && b[p] != delimiter { p += 1 }
            } else {
                while p < end && b[p] != delimiter { p += 1 }
                e = p
                if trim { while e > s && (b[e - 1] == UInt8(ascii: " ") || b[e - 1] == UInt8(ascii: "\t")) { e -= 1 } }
            }
            fields.append(Field(start: s, count: e - s))
            if p >= end { return true }
            p += 1  // the delimiter
        }
    }

    static func text(_ b: UnsafePointer<UInt8>, _ f: Field) -> String {
        String(decoding: UnsafeBufferPointer(start: b + f.start, count: f.count), as: UTF8.self)
            .replacing("\"\"", with: "\"")
    }

    static func parse(base b: UnsafePointer<UInt8>, count n: Int, name: String, options: CSVOptions)
        throws(LapwingError) -> Dataset
    {
        let delim = options.delimiter
        if delim == UInt8(ascii: "\n") || delim == UInt8(ascii: "\r") || delim == UInt8(ascii: "\"") {
            throw LapwingError(.invalidArgument, "\(name): delimiter \(delim) cannot be used")
        }
        let trim = delim != UInt8(ascii: " ") && delim != UInt8(ascii: "\t")
        var fields: [Field] = []
        fields.reserveCapacity(1024)
        var labels = RawVec<Float>(capacity: max(n / 1024, 1024))
        var lineOf = RawVec<Int32>(capacity: max(n / 1024, 1024))
        var dense = RawVec<Float>(capacity: max(n / 4, 1024))
        var ncols = -1
        var labelCol = 0
        var header: [String]? = nil
        var line = 0
        // A UTF-8 byte order mark (as spreadsheets write it) is not part of the first field.
        var p = hasByteOrderMark(b, n) ? 3 : 0
        func fail(_ line: Int, _ why: String) -> LapwingError {
            LapwingError(.invalidData, "\(name):\(line): \(why)")
        }
        while p < n {
            line += 1
            // A stop signal ends a long parse too (checked every 65536 lines).
            if line & 0xFFFF == 0, case let sig = lw_stop_signal(), sig != 0 {
                throw InputBytes.stopped(name, signal: sig, after: p)
            }
            let s = p
            while p < n && b[p] != UInt8(ascii: "\n") { p += 1 }
            var e = p
            p += 1
            if e > s && b[e - 1] == UInt8(ascii: "\r") { e -= 1 }
            var blank = true
            for k in s..<e where b[k] != UInt8(ascii: " ") && b[k] != UInt8(ascii: "\t") {
                blank = false
                break
            }
            if blank { continue }
            if !split(b, from: s, end: e, delimiter: delim, trim: trim, into: &fields) {
                throw fail(line, "unterminated quoted field")
            }
            if ncols < 0 {
                // The first row: the column count, the header and the label column.
                ncols = fields.count
                var isHeader = options.hasHeader
                if isHeader == nil {
                    var scratch: Float = 0
                    isHeader = fields.contains { parseFloat(b + $0.start, $0.count, &scratch) == .invalid }
                }
                if isHeader == true { header = fields.map { text(b, $0) } }
                switch options.labelColumn {
                case .index(let i):
                    labelCol = i < 0 ? ncols + i : i
                    if labelCol < 0 || labelCol >= ncols {
                        throw LapwingError(
                            .invalidArgument,
                            "\(name):\(line): label column \(i) out of range (the file has \(ncols) columns)")
                    }
                case .name(let want):
                    guard let header else {
                        throw LapwingError(
                            .invalidArgument, "\(name):\(line): label column '\(want)' given by name but the file has no header")
                    }
                    guard let i = header.firstIndex(of: want) else {
                        throw LapwingError(.invalidArgument, "\(name):\(line): no column named '\(want)' in the header")
                    }
                    labelCol = i
                }
                if ncols < 2 {
                    throw fail(line, "only \(ncols) column, expected a label and at least one feature")
                }
                if header != nil { continue }
            }
            if fields.count != ncols {
                throw fail(line, "\(fields.count) fields, expected \(ncols)")
            }
            dense.reserve(more: ncols - 1)
            for (k, f) in fields.enumerated() {
                var v: Float = 0
                let st = parseFloat(b + f.start, f.count, &v)
                if st != .ok {
                    // The column's number only: a header name is the file's content too.
                    let what = k == labelCol ? "label (field \(k + 1))" : "field \(k + 1)"
                    switch st {
                    case .nonFinite: throw fail(line, "\(what): NaN/Inf not allowed")
                    case .outOfRange: throw fail(line, "\(what) out of Float range")
                    default:
                        if f.count == 0 { throw fail(line, "\(what) is empty") }
                        throw fail(line, "\(what): \(tokenDescription(b + f.start, f.count)) that is not a number")
                    }
                }
                if k == labelCol {
                    labels.append(v)
                    lineOf.append(Int32(truncatingIfNeeded: line))
                } else {
                    dense.appendUnchecked(v)
                }
            }
        }
        let rows = labels.count
        if rows == 0 {
            if header != nil { throw LapwingError(.invalidData, "\(name): no examples (only a header)") }
            throw LapwingError(.invalidData, "\(name): empty file (no examples)")
        }
        let (kind, facts) = try finalizeLabels(labels.ptr, count: rows, options: options.labels, name: name) { i in
            ":\(lineOf[i])"
        }
        let l = labels.take()
        let d = dense.take()
        let storage = DatasetStorage(.heap([UnsafeMutableRawPointer(l), UnsafeMutableRawPointer(d)]))
        return Dataset(
            rows: rows, cols: ncols - 1, labelKind: kind, source: name, storage: storage, labels: l, dense: d,
            labelFacts: facts)
    }
}
