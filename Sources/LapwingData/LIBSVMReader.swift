import LapwingCore

/// LIBSVM / svmlight text (plain or gzipped): `label index:value index:value ... [# comment]`
/// per line, indices 1-based and strictly increasing; `qid:N` is ignored; blank and comment
/// lines are skipped; CRLF line endings are fine. Rows are stored as CSR, never densified.
public enum LIBSVMReader {
    public struct Options: Sendable, Equatable {
        /// The declared number of features; an index beyond it is an error. nil: the largest index seen.
        public var featureCount: Int?
        public var labels: LabelOptions

        public init(featureCount: Int? = nil, labels: LabelOptions = LabelOptions()) {
            self.featureCount = featureCount
            self.labels = labels
        }
    }

    public static func load(path: String, options: Options = Options()) throws(LapwingError) -> Dataset {
        let file = try InputFile(path)
        let b = file.bytes
        var lines = LineCursor(b)
        var rowStart: [Int64] = [0]
        var indices: [Int32] = []
        var values: [Float] = []
        var labels: [Float] = []
        indices.reserveCapacity(b.count / 8)
        values.reserveCapacity(b.count / 8)
        var scratch = [CChar](repeating: 0, count: 64)
        var maxIndex = 0

        func fail(_ line: Int, _ why: String) -> LapwingError {
            LapwingError(.invalidData, "\(path):\(line): \(why)")
        }
        @inline(__always) func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0D || c == 0x0B || c == 0x0C }

        while let line = lines.next() {
            var p = line.lowerBound
            var end = line.upperBound
            // Drop a trailing comment.
            if let hash = (p..<end).first(where: { b[$0] == 0x23 }) { end = hash }
            while p < end && isSpace(b[p]) { p += 1 }
            if p == end { continue }
            func token() -> Range<Int> {
                let s = p
                while p < end && !isSpace(b[p]) { p += 1 }
                let r = s..<p
                while p < end && isSpace(b[p]) { p += 1 }
                return r
            }
            let labelToken = token()
            guard let label = Numbers.float(b, labelToken, scratch: &scratch) else {
                throw fail(lines.lineNumber, "label '\(Numbers.text(b, labelToken))' is not a number")
            }
            guard label.isFinite else { throw fail(lines.lineNumber, "label \(Numbers.text(b, labelToken)) is not finite") }
            var previous = 0
            while p < end {
                let t = token()
                guard let colon = t.first(where: { b[$0] == 0x3A }) else {
                    throw fail(lines.lineNumber, "'\(Numbers.text(b, t))' is not index:value")
                }
                let key = t.lowerBound..<colon
                let val = (colon + 1)..<t.upperBound
                if key.count == 3 && b[key.lowerBound] == 0x71 && b[key.lowerBound + 1] == 0x69
                    && b[key.lowerBound + 2] == 0x64
                {
                    continue  // qid:N
                }
                guard let index = Numbers.integer(b, key) else {
                    throw fail(lines.lineNumber, "feature index '\(Numbers.text(b, key))' is not a positive integer")
                }
                guard index >= 1 else { throw fail(lines.lineNumber, "feature index 0 (indices start at 1)") }
                guard index > previous else {
                    throw fail(
                        lines.lineNumber,
                        index == previous
                            ? "feature index \(index) appears twice"
                            : "feature indices not increasing (\(index) after \(previous))")
                }
                if let declared = options.featureCount, index > declared {
                    throw fail(lines.lineNumber, "feature index \(index) beyond the declared feature count \(declared)")
                }
                guard index <= Int(Int32.max) else { throw fail(lines.lineNumber, "feature index \(index) is too large") }
                guard let v = Numbers.float(b, val, scratch: &scratch) else {
                    throw fail(lines.lineNumber, "non-numeric value '\(Numbers.text(b, val))' for feature \(index)")
                }
                guard v.isFinite, Float(v).isFinite else {
                    throw fail(lines.lineNumber, "value \(Numbers.text(b, val)) of feature \(index) is not finite (NaN and Inf are not allowed)")
                }
                previous = index
                indices.append(Int32(index - 1))
                values.append(Float(v))
            }
            maxIndex = max(maxIndex, previous)
            labels.append(Float(label))
            rowStart.append(Int64(indices.count))
        }
        guard !labels.isEmpty else {
            throw LapwingError(
                .invalidData, "\(path): empty file (no examples)",
                detail: b.count == 0 ? "the file has no bytes" : "\(lines.lineNumber) line(s), none with an example")
        }
        let kind = options.labels.resolve(&labels)
        return Dataset(
            rowStart: rowStart, indices: indices, values: values, cols: options.featureCount ?? maxIndex,
            labels: labels, labelKind: kind, source: path)
    }
}
