import Foundation

/// Any JSON value: the opaque parts of the protocol (a job spec, a verb's result, an event).
///
/// Numbers are `Double`s: integers are exact up to 2^53 and are written without a fraction.
public enum JSONValue: Codable, Sendable, Equatable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let d = try? c.decode(Double.self) {
            self = .number(d)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([JSONValue].self) {
            self = .array(a)
        } else {
            self = .object(try c.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let d):
            if let i = JSONValue.exactInteger(d) { try c.encode(i) } else { try c.encode(d) }
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    /// `d` as an Int64 when it is an integer of at most 2^53 in magnitude (exact in a Double).
    static func exactInteger(_ d: Double) -> Int64? {
        guard d.isFinite, d == d.rounded(.towardZero), abs(d) <= 9_007_199_254_740_992 else { return nil }
        return Int64(d)
    }

    /// The members of an object, or nil.
    public var objectValue: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// An integral number (exact in a Double) as an Int, or nil.
    public var intValue: Int? {
        if case .number(let d) = self, let i = JSONValue.exactInteger(d) { return Int(i) }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public subscript(key: String) -> JSONValue? { objectValue?[key] }

    /// The JSON type's name, for messages: "object", "string", ...
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    /// Any Encodable value as a JSONValue (through its JSON text).
    public init(encoding value: some Encodable) throws(ProtocolError) {
        self = try JSONValue.parse(Frame.json(encoding: value))
    }

    /// Decodes this value as `T` (through its JSON text); a mismatch is `invalid_argument`, naming the field.
    public func decode<T: Decodable>(as type: T.Type) throws(ProtocolError) -> T {
        do { return try JSONDecoder().decode(T.self, from: Data(jsonBytes())) } catch let error as DecodingError {
            throw ProtocolError(.invalidArgument, "not a valid \(T.self)", detail: describe(error))
        } catch {
            throw ProtocolError(.invalidArgument, "not a valid \(T.self)", detail: "\(error)")
        }
    }

    /// Parses JSON text; malformed text is `bad_frame` with where and why in the detail.
    public static func parse(_ bytes: [UInt8]) throws(ProtocolError) -> JSONValue {
        do throws(JSONSyntaxError) {
            return try JSONParser.parse(bytes)
        } catch {
            throw ProtocolError(.badFrame, "malformed JSON", detail: error.reason)
        }
    }

    /// Compact JSON text, object keys sorted.
    public func jsonBytes() -> [UInt8] {
        var w = JSONWriter()
        w.write(self)
        return w.bytes
    }

    /// Compact JSON text, object keys sorted.
    public func jsonText() -> String { String(decoding: jsonBytes(), as: UTF8.self) }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

/// A DecodingError in words: the reason, the field's path, and the parser's own explanation.
func describe(_ error: DecodingError) -> String {
    func path(_ keys: [any CodingKey]) -> String {
        var s = ""
        for k in keys {
            if let i = k.intValue { s += "[\(i)]" } else { s += s.isEmpty ? k.stringValue : "." + k.stringValue }
        }
        return s.isEmpty ? "the top level" : s
    }
    func underlying(_ context: DecodingError.Context) -> String {
        guard let u = context.underlyingError else { return context.debugDescription }
        let ns = u as NSError
        if let d = ns.userInfo[NSDebugDescriptionErrorKey] as? String { return "\(context.debugDescription) \(d)" }
        return "\(context.debugDescription) \(u)"
    }
    switch error {
    case .keyNotFound(let key, let context):
        return "missing field \"\(path(context.codingPath + [key]))\""
    case .typeMismatch(let type, let context):
        return "\(path(context.codingPath)): expected \(type): \(context.debugDescription)"
    case .valueNotFound(let type, let context):
        return "\(path(context.codingPath)): expected \(type), found null"
    case .dataCorrupted(let context):
        return underlying(context)
    @unknown default:
        return "\(error)"
    }
}
