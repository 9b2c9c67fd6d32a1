/// Reads a JSON object strictly: unknown fields are refused at once (`unknown_field`), and a missing
/// field or one of the wrong type is `invalid_argument`; every message names the field and where it is.
public struct JSONObjectReader {
    /// Where the object sits, for messages: "request", "args", "args.files[1]".
    public let context: String
    public let requestID: Int?
    private let fields: [String: JSONValue]

    /// Checks that `value` is an object whose keys are all in `allowed`.
    public init(_ value: JSONValue, context: String, allowed: [String], requestID: Int? = nil) throws(ProtocolError) {
        self.context = context
        self.requestID = requestID
        guard case .object(let fields) = value else {
            throw ProtocolError(
                .invalidArgument, "\(context): expected an object, found \(value.typeName)", requestID: requestID)
        }
        self.fields = fields
        if let unknown = fields.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw ProtocolError(
                .unknownField, "\(context): unknown field \"\(unknown)\"",
                detail: allowed.isEmpty ? "no fields are allowed here" : "allowed: \(allowed.joined(separator: ", "))",
                requestID: requestID)
        }
    }

    public func contains(_ key: String) -> Bool { fields[key] != nil }

    public func optional(_ key: String) -> JSONValue? { fields[key] }

    public func required(_ key: String) throws(ProtocolError) -> JSONValue {
        guard let v = fields[key] else {
            throw ProtocolError(.invalidArgument, "\(context): missing field \"\(key)\"", requestID: requestID)
        }
        return v
    }

    public func string(_ key: String) throws(ProtocolError) -> String {
        let v = try required(key)
        guard let s = v.stringValue else { throw mismatch(key, "a string", v) }
        return s
    }

    public func int(_ key: String) throws(ProtocolError) -> Int {
        let v = try required(key)
        guard let i = v.intValue else { throw mismatch(key, "an integer", v) }
        return i
    }

    public func bool(_ key: String) throws(ProtocolError) -> Bool {
        let v = try required(key)
        guard let b = v.boolValue else { throw mismatch(key, "a boolean", v) }
        return b
    }

    public func object(_ key: String) throws(ProtocolError) -> JSONValue {
        let v = try required(key)
        guard v.objectValue != nil else { throw mismatch(key, "an object", v) }
        return v
    }

    public func array(_ key: String) throws(ProtocolError) -> [JSONValue] {
        let v = try required(key)
        guard let a = v.arrayValue else { throw mismatch(key, "an array", v) }
        return a
    }

    public func mismatch(_ key: String, _ expected: String, _ found: JSONValue) -> ProtocolError {
        let shown = found.typeName == "number" || found.typeName == "boolean" ? " \(found.jsonText())" : ""
        return ProtocolError(
            .invalidArgument, "\(context): field \"\(key)\" must be \(expected), found \(found.typeName)\(shown)",
            requestID: requestID)
    }
}
