#if canImport(Glibc)
import Glibc
#endif

/// The outcome of parsing one numeric token.
enum NumberStatus {
    case ok
    /// Not a number at all ("abc", "1.2.3", "").
    case invalid
    /// "nan", "inf", "infinity" (any case, any sign).
    case nonFinite
    /// A finite decimal too large for a Float32.
    case outOfRange
}

/// Exact powers of ten as Doubles (10^0 ... 10^22 are all exactly representable).
private let powersOfTen: [Double] = (0...22).map { e in
    var x = 1.0
    for _ in 0..<e { x *= 10 }
    return x
}

/// Parses the token `p[0..<n]` as a Float32, correctly rounded.
///
/// The common case (up to 19 significant digits, a decimal exponent within ±22) takes Clinger's
/// fast path: the Double is exact after one rounding, and the Double-to-Float rounding is exact
/// unless the Double lies on a Float halfway point, which falls back to `strtof` like every other
/// unusual token (hex floats, long mantissas, "nan").
@inline(__always)
func parseFloat(_ p: UnsafePointer<UInt8>, _ n: Int, _ out: inout Float) -> NumberStatus {
    var i = 0
    var neg = false
    if n > 0 && (p[0] == UInt8(ascii: "-") || p[0] == UInt8(ascii: "+")) {
        neg = p[0] == UInt8(ascii: "-")
        i = 1
    }
    var m: UInt64 = 0
    var exp10 = 0
    var dropped = false
    var sawDigit = false
    while i < n {
        let d = p[i] &- UInt8(ascii: "0")
        if d >= 10 { break }
        sawDigit = true
        if m < 1_000_000_000_000_000_000 {
            m = m &* 10 &+ UInt64(d)
        } else {
            exp10 += 1
            if d != 0 { dropped = true }
        }
        i += 1
    }
    if i < n && p[i] == UInt8(ascii: ".") {
        i += 1
        while i < n {
            let d = p[i] &- UInt8(ascii: "0")
            if d >= 10 { break }
            sawDigit = true
            if m < 1_000_000_000_000_000_000 {
                m = m &* 10 &+ UInt64(d)
                exp10 -= 1
            } else if d != 0 {
                dropped = true
            }
            i += 1
        }
    }
    if !sawDigit { return parseFloatSlow(p, n, &out) }
    if i < n && (p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E")) {
        i += 1
        var eneg = false
        if i < n && (p[i] == UInt8(ascii: "-") || p[i] == UInt8(ascii: "+")) {
            eneg = p[i] == UInt8(ascii: "-")
            i += 1
        }
        var e = 0
        var eDigits = 0
        while i < n {
            let d = p[i] &- UInt8(ascii: "0")
            if d >= 10 { break }
            if e < 100_000 { e = e * 10 + Int(d) }
            eDigits += 1
            i += 1
        }
        if eDigits == 0 { return .invalid }
        exp10 += eneg ? -e : e
    }
    if i != n { return parseFloatSlow(p, n, &out) }
    if m == 0 {
        out = neg ? -0.0 : 0.0
        return .ok
    }
    if !dropped && m <= (1 << 53) && exp10 >= -22 && exp10 <= 22 {
        var d = Double(m)
        if exp10 < 0 { d /= powersOfTen[-exp10] } else { d *= powersOfTen[exp10] }
        if d >= Double(Float.leastNormalMagnitude) && d <= Double(Float.greatestFiniteMagnitude)
            && d.bitPattern & 0x1FFF_FFFF != 0x1000_0000
        {
            out = Float(neg ? -d : d)
            return .ok
        }
    }
    return parseFloatSlow(p, n, &out)
}

@inline(never)
func parseFloatSlow(_ p: UnsafePointer<UInt8>, _ n: Int, _ out: inout Float) -> NumberStatus {
    if n == 0 { return .invalid }
    // strtof needs a NUL-terminated string and skips leading blanks, which a token never has.
    if p[0] == UInt8(ascii: " ") || p[0] == UInt8(ascii: "\t") { return .invalid }
    let scratch = UnsafeMutablePointer<CChar>.allocate(capacity: n + 1)
    defer { scratch.deallocate() }
    UnsafeMutableRawPointer(scratch).copyMemory(from: p, byteCount: n)
    scratch[n] = 0
    var end: UnsafeMutablePointer<CChar>? = nil
    let v = strtof(scratch, &end)
    guard let end, end - scratch == n else { return .invalid }
    if v.isNaN { return .nonFinite }
    if v.isInfinite {
        // "inf"/"infinity" spell it out; a decimal that overflowed does not.
        for k in 0..<n where p[k] | 0x20 == UInt8(ascii: "i") { return .nonFinite }
        return .outOfRange
    }
    out = v
    return .ok
}

/// Parses a non-negative decimal integer token (digits only); nil if empty, not digits or > `limit`.
@inline(__always)
func parseIndex(_ p: UnsafePointer<UInt8>, _ n: Int, limit: Int) -> Int? {
    if n == 0 || n > 18 { return nil }
    var v = 0
    for k in 0..<n {
        let d = p[k] &- UInt8(ascii: "0")
        if d >= 10 { return nil }
        v = v * 10 + Int(d)
    }
    return v <= limit ? v : nil
}

/// A description of the token `p[0..<n]` for an error message, without its content: error
/// reasons reach every user who lists the job, so they never quote a file's bytes. "an empty
/// token", "a 3-byte token", "a 12-byte token with control or non-ASCII bytes".
func tokenDescription(_ p: UnsafePointer<UInt8>, _ n: Int) -> String {
    if n == 0 { return "an empty token" }
    var binary = false
    for k in 0..<n where p[k] < 0x20 || p[k] >= 0x7F {
        binary = true
        break
    }
    return "a \(n)-byte token\(binary ? " with control or non-ASCII bytes" : "")"
}

/// True when the text starts with the UTF-8 byte order mark EF BB BF.
func hasByteOrderMark(_ p: UnsafePointer<UInt8>, _ n: Int) -> Bool {
    n >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF
}
