import CLapwing
import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// The whole content of an input file, gunzipped if it was gzipped (detected from its first
/// bytes, not its name).
struct InputFile: ~Copyable {
    let path: String
    let bytes: UnsafeBufferPointer<UInt8>
    let wasGzip: Bool

    init(_ path: String) throws(LapwingError) {
        var out: UnsafeMutablePointer<UInt8>? = nil
        var length = 0
        var gz: Int32 = 0
        var err = [CChar](repeating: 0, count: 256)
        let rc = err.withUnsafeMutableBufferPointer { lw_read_file(path, &out, &length, &gz, $0.baseAddress, 256) }
        if rc < 0 {
            let e = -rc
            if e == EILSEQ {
                let why = err.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
                throw LapwingError(.invalidData, "\(path): corrupt or truncated gzip data", detail: why)
            }
            if e == EISDIR { throw LapwingError(.invalidArgument, "\(path): is a directory, not a data file") }
            throw LapwingError.system("open", errno: e, object: path)
        }
        self.path = path
        bytes = UnsafeBufferPointer(start: out, count: length)
        wasGzip = gz != 0
    }

    deinit { free(UnsafeMutableRawPointer(mutating: bytes.baseAddress)) }
}

/// A cursor over the lines of a text file: 1-based physical line numbers, CR before LF dropped.
struct LineCursor {
    let bytes: UnsafeBufferPointer<UInt8>
    var position = 0
    var lineNumber = 0

    init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// The next line's byte range (without its line ending), or nil at the end.
    mutating func next() -> Range<Int>? {
        guard position < bytes.count else { return nil }
        lineNumber += 1
        let start = position
        var end = start
        let base = bytes.baseAddress!
        if let nl = memchr(base + start, 0x0A, bytes.count - start) {
            end = base.distance(to: nl.assumingMemoryBound(to: UInt8.self))
            position = end + 1
        } else {
            end = bytes.count
            position = end
        }
        if end > start && base[end - 1] == 0x0D { end -= 1 }
        return start..<end
    }
}

/// Number parsing over raw bytes, with the offending token kept for error messages.
enum Numbers {
    /// Parses a finite decimal number (as strtod reads it) from bytes[range]; nil if it is not one.
    static func float(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, scratch: inout [CChar]) -> Double? {
        let n = range.count
        guard n > 0, n < 400 else { return nil }
        if scratch.count < n + 1 { scratch = [CChar](repeating: 0, count: n + 1) }
        return scratch.withUnsafeMutableBufferPointer { s -> Double? in
            let p = s.baseAddress!
            for k in 0..<n { p[k] = CChar(bitPattern: bytes[range.lowerBound + k]) }
            p[n] = 0
            var end: UnsafeMutablePointer<CChar>? = nil
            let v = strtod(p, &end)
            guard end == p + n else { return nil }
            return v
        }
    }

    /// Parses a non-negative decimal integer from bytes[range].
    static func integer(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty, range.count <= 18 else { return nil }
        var v = 0
        for k in range {
            let d = Int(bytes[k]) - 48
            guard d >= 0 && d <= 9 else { return nil }
            v = v * 10 + d
        }
        return v
    }

    static func text(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String {
        let shown = range.lowerBound..<min(range.upperBound, range.lowerBound + 40)
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[shown]), as: UTF8.self)
            + (range.count > 40 ? "..." : "")
    }
}
