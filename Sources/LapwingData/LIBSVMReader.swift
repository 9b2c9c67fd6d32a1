import CLapwing
import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// Options of the LIBSVM / svmlight reader.
public struct LIBSVMOptions: Sendable, Equatable {
    /// The declared feature dimension; an index beyond it is an error. Default: the largest index seen.
    public var featureCount: Int?
    public var labels: LabelOptions
    /// The most bytes read from the file (nil: `ReadLimit.defaultBytes`).
    public var maxBytes: Int?

    public init(featureCount: Int? = nil, labels: LabelOptions = LabelOptions(), maxBytes: Int? = nil) {
        self.featureCount = featureCount
        self.labels = labels
        self.maxBytes = maxBytes
    }
}

/// Reads LIBSVM / svmlight files (plain or gzipped) into sparse data sets.
///
/// One example per line: `label index:value index:value ... [# comment]`, indices 1-based and
/// strictly increasing (stored 0-based). `qid:N` tokens are ignored; blank lines and lines that
/// start with `#` are skipped; spaces and tabs separate tokens; CRLF line ends are accepted.
public enum LIBSVMReader {
    /// Loads `path`; errors name the file and the 1-based line.
    public static func load(path: String, options: LIBSVMOptions = LIBSVMOptions()) throws(LapwingError) -> Dataset {
        let input = try InputBytes.open(path: path, limit: options.maxBytes)
        return try parse(input, options: options)
    }

    /// Loads from an open descriptor (read from its current offset; it stays open), naming it `name`.
    public static func load(fd: Int32, name: String, options: LIBSVMOptions = LIBSVMOptions()) throws(LapwingError)
        -> Dataset
    {
        let input = try InputBytes.read(fd: fd, name: name, limit: options.maxBytes)
        return try parse(input, options: options)
    }

    /// Parses a LIBSVM text held in memory (tests, benchmarks).
    public static func parse(bytes: UnsafeRawBufferPointer, name: String, options: LIBSVMOptions = LIBSVMOptions())
        throws(LapwingError) -> Dataset
    {
        let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(bitPattern: 1)!
        return try parse(base: base, count: bytes.count, name: name, options: options)
    }

    static func parse(_ input: borrowing InputBytes, options: LIBSVMOptions) throws(LapwingError) -> Dataset {
        try parse(base: input.base, count: input.count, name: input.name, options: options)
    }

    @inline(__always)
    private static func isBlank(_ c: UInt8) -> Bool {
        c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\r") || c == 0x0B || c == 0x0C
    }

    @inline(__always)
    private static func isTokenEnd(_ c: UInt8) -> Bool {
        c <= UInt8(ascii: " ") && (c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") || c == UInt8(ascii: "\n")
            || c == UInt8(ascii: "\r") || c == 0x0B || c == 0x0C)
    }

    static func parse(base b: UnsafePointer<UInt8>, count n: Int, name: String, options: LIBSVMOptions)
        throws(LapwingError) -> Dataset
    {
        if let fc = options.featureCount, fc < 0 || fc > Int(Int32.max) {
            throw LapwingError(.invalidArgument, "\(name): feature count \(fc) out of range")
        }
        let declared = options.featureCount
        let indexLimit = declared ?? Int(Int32.max)
        let guess = max(n / 8, 1024)
        var labels = RawVec<Float>(capacity: max(n / 256, 1024))
        var lines = RawVec<Int32>(capacity: max(n / 256, 1024))
        var rowStart = RawVec<Int64>(capacity: max(n / 256, 1024))
        var indices = RawVec<Int32>(capacity: guess)
        var values = RawVec<Float>(capacity: guess)
        rowStart.append(0)
        var maxIndex = 0
        var line = 1
        var sawComment = false
        // A UTF-8 byte order mark is not part of the first label.
        var p = hasByteOrderMark(b, n) ? 3 : 0

        func fail(_ line: Int, _ why: String) -> LapwingError {
            LapwingError(.invalidData, "\(name):\(line): \(why)")
        }

        while p < n {
            // Start of a line.
            while p < n && isBlank(b[p]) { p += 1 }
            if p == n { break }
            if b[p] == UInt8(ascii: "\n") {
                line += 1
                p += 1
                continue
            }
            if b[p] == UInt8(ascii: "#") {
                sawComment = true
                while p < n && b[p] != UInt8(ascii: "\n") { p += 1 }
                continue
            }
            // A stop signal ends a long parse too (checked every 65536 examples).
            if labels.count & 0xFFFF == 0xFFFF, case let sig = lw_stop_signal(), sig != 0 {
                throw InputBytes.stopped(name, signal: sig, after: p)
            }
            // The label.
            let t0 = p
            while p < n && !isTokenEnd(b[p]) { p += 1 }
            var label: Float = 0
            switch parseFloat(b + t0, p - t0, &label) {
            case .ok: break
            case .invalid: throw fail(line, "label: \(tokenDescription(b + t0, p - t0)) that is not a number")
            case .nonFinite: throw fail(line, "label: NaN/Inf not allowed")
            case .outOfRange: throw fail(line, "label out of Float range")
            }
            labels.append(label)
            lines.append(Int32(truncatingIfNeeded: line))
            var last = 0  // previous 1-based index in this row
            // The features.
            while true {
                while p < n && isBlank(b[p]) { p += 1 }
                if p == n || b[p] == UInt8(ascii: "\n") { break }
                if b[p] == UInt8(ascii: "#") {
                    while p < n && b[p] != UInt8(ascii: "\n") { p += 1 }
                    break
                }
                let s = p
                var idx = 0
                var digits = 0
                while p < n {
                    let d = b[p] &- UInt8(ascii: "0")
                    if d >= 10 { break }
                    if idx <= Int(Int32.max) { idx = idx * 10 + Int(d) }
                    digits += 1
                    p += 1
                }
                if p == n || b[p] != UInt8(ascii: ":") || digits == 0 {
                    while p < n && !isTokenEnd(b[p]) { p += 1 }
                    if p - s > 4 && b[s] == UInt8(ascii: "q") && b[s + 1] == UInt8(ascii: "i")
                        && b[s + 2] == UInt8(ascii: "d") && b[s + 3] == UInt8(ascii: ":")
                    {
                        continue
                    }
                    throw fail(line, "malformed feature: \(tokenDescription(b + s, p - s)) (expected index:value)")
                }
                p += 1
                let v0 = p
                while p < n && !isTokenEnd(b[p]) { p += 1 }
                if idx == 0 { throw fail(line, "feature index 0 (indices start at 1)") }
                if idx > indexLimit {
                    if let declared {
                        throw fail(line, "feature index \(idx) beyond the declared feature count \(declared)")
                    }
                    throw fail(line, "feature index of \(digits) digits too large (at most \(Int32.max))")
                }
                if idx <= last {
                    if idx == last { throw fail(line, "duplicate feature index \(idx)") }
                    throw fail(line, "feature indices not increasing (\(idx) after \(last))")
                }
                last = idx
                var v: Float = 0
                switch parseFloat(b + v0, p - v0, &v) {
                case .ok: break
                case .invalid:
                    throw fail(line, "value for feature \(idx): \(tokenDescription(b + v0, p - v0)) that is not a number")
                case .nonFinite:
                    throw fail(line, "value for feature \(idx): NaN/Inf not allowed")
                case .outOfRange:
                    throw fail(line, "value for feature \(idx) out of Float range")
                }
                indices.append(Int32(truncatingIfNeeded: idx - 1))
                values.append(v)
            }
            if last > maxIndex { maxIndex = last }
            rowStart.append(Int64(indices.count))
        }

        let rows = labels.count
        if rows == 0 {
            if sawComment { throw LapwingError(.invalidData, "\(name): no examples (only comments and blank lines)") }
            throw LapwingError(.invalidData, "\(name): empty file (no examples)")
        }
        let (kind, facts) = try finalizeLabels(labels.ptr, count: rows, options: options.labels, name: name) { i in
            ":\(lines[i])"
        }
        let nnz = indices.count
        let cols = declared ?? maxIndex
        let lp = labels.take()
        let rp = rowStart.take()
        let ip = indices.take()
        let vp = values.take()
        let storage = DatasetStorage(.heap([UnsafeMutableRawPointer(lp), UnsafeMutableRawPointer(rp),
                                            UnsafeMutableRawPointer(ip), UnsafeMutableRawPointer(vp)]))
        return Dataset(
            rows: rows, cols: cols, nnz: nnz, labelKind: kind, source: name, storage: storage, labels: lp,
            rowStart: rp, indices: ip, values: vp, labelFacts: facts)
    }
}
