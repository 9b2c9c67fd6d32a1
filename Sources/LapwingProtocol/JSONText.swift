/// JSON text to `JSONValue` and back, by hand: one pass each way, strict RFC 8259.
///
/// Foundation's JSONDecoder reaches a `JSONValue` only by trying each case in turn (and throwing
/// on every miss), which made parsing the largest cost of a control request; this parser reads
/// each byte once and says where and why it stopped ("character N", counted from 0).
struct JSONParser {
    /// Deeper nesting than this is refused rather than recursed into.
    static let maxDepth = 256

    private let bytes: [UInt8]
    private var i = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// The one value of `bytes`, with nothing but whitespace after it.
    static func parse(_ bytes: [UInt8]) throws(JSONSyntaxError) -> JSONValue {
        var p = JSONParser(bytes)
        p.skipSpace()
        let v = try p.value(depth: 0)
        p.skipSpace()
        if p.i < bytes.count { throw p.unexpected("after the value") }
        return v
    }

    private mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
    }

    private func unexpected(_ context: String) -> JSONSyntaxError {
        guard i < bytes.count else { return JSONSyntaxError("unexpected end of file at character \(i) (\(context))") }
        let b = bytes[i]
        let shown = b >= 0x20 && b < 0x7F ? "'\(Character(Unicode.Scalar(b)))'" : "byte 0x\(String(b, radix: 16))"
        return JSONSyntaxError("unexpected \(shown) at character \(i) (\(context))")
    }

    private mutating func value(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        guard i < bytes.count else { throw unexpected("expected a value") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw unexpected("expected a value")
        }
    }

    private mutating func literal(_ word: StaticString) throws(JSONSyntaxError) {
        let w = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        for b in w {
            guard i < bytes.count, bytes[i] == b else { throw unexpected("expected \(word)") }
            i += 1
        }
    }

    private mutating func object(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        var members: [String: JSONValue] = [:]
        try items(closedBy: UInt8(ascii: "}"), depth: depth) { (p: inout JSONParser) throws(JSONSyntaxError) in
            guard p.i < p.bytes.count, p.bytes[p.i] == UInt8(ascii: "\"") else {
                throw p.unexpected("expected a member name in quotes")
            }
            let keyStart = p.i
            let key = try p.string()
            // One meaning per key: a reader that kept the first and one that kept the last
            // would act on different requests.
            if members[key] != nil {
                let shown = key.count > 64 ? key.prefix(64) + "…" : Substring(key)
                throw JSONSyntaxError("duplicate key \"\(shown)\" at character \(keyStart)")
            }
            p.skipSpace()
            guard p.i < p.bytes.count, p.bytes[p.i] == UInt8(ascii: ":") else {
                throw p.unexpected("expected ':' after a member name")
            }
            p.i += 1
            p.skipSpace()
            members[key] = try p.value(depth: depth)
        }
        return .object(members)
    }

    private mutating func array(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        var elements: [JSONValue] = []
        try items(closedBy: UInt8(ascii: "]"), depth: depth) { (p: inout JSONParser) throws(JSONSyntaxError) in
            elements.append(try p.value(depth: depth))
        }
        return .array(elements)
    }

    /// The comma-separated items of an object or array, from its opening bracket through `close`;
    /// `item` reads one item, starting at its first byte.
    private mutating func items(
        closedBy close: UInt8, depth: Int, _ item: (inout JSONParser) throws(JSONSyntaxError) -> Void
    ) throws(JSONSyntaxError) {
        guard depth <= Self.maxDepth else { throw JSONSyntaxError("nesting deeper than \(Self.maxDepth) at character \(i)") }
        i += 1
        skipSpace()
        if i < bytes.count, bytes[i] == close {
            i += 1
            return
        }
        let expected = "expected ',' or '\(Character(Unicode.Scalar(close)))'"
        while true {
            skipSpace()
            try item(&self)
            skipSpace()
            guard i < bytes.count else { throw unexpected(expected) }
            if bytes[i] == UInt8(ascii: ",") {
                i += 1
            } else if bytes[i] == close {
                i += 1
                return
            } else {
                throw unexpected(expected)
            }
        }
    }

    private mutating func string() throws(JSONSyntaxError) -> String {
        let start = i
        i += 1
        // The common case: no escapes, so the bytes are the string (validated as UTF-8).
        var j = i
        while j < bytes.count, bytes[j] != UInt8(ascii: "\""), bytes[j] != UInt8(ascii: "\\"), bytes[j] >= 0x20 { j += 1 }
        if j < bytes.count, bytes[j] == UInt8(ascii: "\"") {
            defer { i = j + 1 }
            return try utf8(bytes[i..<j], at: start)
        }
        var out: [UInt8] = []
        out.reserveCapacity(j - i + 16)
        while true {
            guard i < bytes.count else { throw unexpected("unterminated string that starts at character \(start)") }
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                i += 1
                return try utf8(out[...], at: start)
            }
            if b < 0x20 { throw unexpected("control characters must be escaped in a string") }
            if b != UInt8(ascii: "\\") {
                out.append(b)
                i += 1
                continue
            }
            i += 1
            guard i < bytes.count else { throw unexpected("expected an escape") }
            let e = bytes[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                        throw JSONSyntaxError("unpaired surrogate \\u\(String(scalar, radix: 16)) at character \(i - 6)")
                    }
                    i += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else {
                        throw JSONSyntaxError("unpaired surrogate \\u\(String(scalar, radix: 16)) at character \(i - 12)")
                    }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw JSONSyntaxError("unpaired surrogate \\u\(String(scalar, radix: 16)) at character \(i - 6)")
                }
                out.append(contentsOf: String(Character(Unicode.Scalar(scalar)!)).utf8)
            default:
                i -= 1
                throw unexpected("not an escape")
            }
        }
    }

    private mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard i < bytes.count else { throw unexpected("expected 4 hex digits after \\u") }
            let b = bytes[i]
            let d: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = b - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = b - UInt8(ascii: "A") + 10
            default: throw unexpected("expected 4 hex digits after \\u")
            }
            v = v << 4 | UInt32(d)
            i += 1
        }
        return v
    }

    private func utf8(_ s: ArraySlice<UInt8>, at start: Int) throws(JSONSyntaxError) -> String {
        guard let text = String(validating: s, as: UTF8.self) else {
            throw JSONSyntaxError("invalid UTF-8 in the string that starts at character \(start)")
        }
        return text
    }

    private mutating func number() throws(JSONSyntaxError) -> Double {
        let start = i
        func digits(_ p: inout JSONParser) -> Int {
            let s = p.i
            while p.i < p.bytes.count, p.bytes[p.i] >= UInt8(ascii: "0"), p.bytes[p.i] <= UInt8(ascii: "9") { p.i += 1 }
            return p.i - s
        }
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") else {
            throw unexpected("expected a digit")
        }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
            if i < bytes.count, bytes[i] >= UInt8(ascii: "0"), bytes[i] <= UInt8(ascii: "9") {
                throw unexpected("numbers have no leading zeros")
            }
        } else {
            _ = digits(&self)
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard digits(&self) > 0 else { throw unexpected("expected a digit after '.'") }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard digits(&self) > 0 else { throw unexpected("expected a digit in the exponent") }
        }
        let text = String(decoding: bytes[start..<i], as: UTF8.self)
        guard let d = Double(text), d.isFinite else {
            throw JSONSyntaxError("number \(text) at character \(start) is out of range")
        }
        return d
    }
}

/// Why JSON text is malformed, and where.
struct JSONSyntaxError: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}

/// Compact JSON text of a `JSONValue`: object keys sorted, so equal values give equal text.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []

    mutating func write(_ v: JSONValue) {
        switch v {
        case .null: append("null")
        case .bool(let b): append(b ? "true" : "false")
        case .number(let d):
            if let n = JSONValue.exactInteger(d) {
                append(String(n))
            } else if d.isFinite {
                append(d.description)
            } else {
                append("null")  // JSON has no NaN or infinity
            }
        case .string(let s): write(string: s)
        case .array(let a):
            bytes.append(UInt8(ascii: "["))
            for (k, e) in a.enumerated() {
                if k > 0 { bytes.append(UInt8(ascii: ",")) }
                write(e)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let o):
            bytes.append(UInt8(ascii: "{"))
            for (k, key) in o.keys.sorted().enumerated() {
                if k > 0 { bytes.append(UInt8(ascii: ",")) }
                write(string: key)
                bytes.append(UInt8(ascii: ":"))
                write(o[key]!)
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    private mutating func append(_ s: String) { bytes.append(contentsOf: s.utf8) }

    private mutating func write(string s: String) {
        bytes.append(UInt8(ascii: "\""))
        defer { bytes.append(UInt8(ascii: "\"")) }
        let utf8 = s.utf8
        if !utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            return bytes.append(contentsOf: utf8)
        }
        for b in utf8 {
            switch b {
            case UInt8(ascii: "\""): append("\\\"")
            case UInt8(ascii: "\\"): append("\\\\")
            case 0x0A: append("\\n")
            case 0x0D: append("\\r")
            case 0x09: append("\\t")
            case 0..<0x20:
                let hex = String(b, radix: 16)
                append("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
            default: bytes.append(b)
            }
        }
    }
}
