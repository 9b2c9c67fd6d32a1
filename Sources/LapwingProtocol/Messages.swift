/// The client's first frame: `{"type":"hello","version":1,"client":"lapwing 0.1.0"}`.
public struct ClientHello: Sendable, Equatable {
    public var version: Int
    public var client: String

    public init(version: Int = ControlProtocol.version, client: String = "lapwing \(ControlProtocol.softwareVersion)") {
        self.version = version
        self.client = client
    }

    /// Throws `unsupported_version` unless the client speaks this library's version.
    public func check() throws(ProtocolError) {
        guard version == ControlProtocol.version else {
            throw ProtocolError(
                .unsupportedVersion, "protocol version \(version) is not supported",
                detail: "this server speaks version \(ControlProtocol.version)")
        }
    }
}

/// The server's answer to a hello: `{"type":"hello","version":1,"server":"lapwingd 0.1.0","uid":1000}`,
/// where uid is the client's uid as the server sees it (SO_PEERCRED).
public struct ServerHello: Sendable, Equatable {
    public var version: Int
    public var server: String
    public var uid: UInt32

    public init(version: Int = ControlProtocol.version, server: String = "lapwingd \(ControlProtocol.softwareVersion)", uid: UInt32) {
        self.version = version
        self.server = server
        self.uid = uid
    }
}

/// `{"type":"request","id":3,"verb":"status","args":{"job":"j42"}}`. The args stay JSON here;
/// `Call.decode` reads them strictly for the verb.
public struct Request: Sendable, Equatable {
    public var id: Int
    public var verb: Verb
    public var args: JSONValue

    public init(id: Int, verb: Verb, args: JSONValue = [:]) {
        self.id = id
        self.verb = verb
        self.args = args
    }

    public init(id: Int, verb: Verb, encoding args: some Encodable) throws(ProtocolError) {
        self.init(id: id, verb: verb, args: try JSONValue(encoding: args))
    }
}

/// The final answer to a request: a result (any JSON, usually an object) or an error.
public struct Response: Sendable, Equatable {
    public var id: Int
    public var outcome: Result<JSONValue, ProtocolError>

    public init(id: Int, result: JSONValue) {
        self.id = id
        self.outcome = .success(result)
    }

    public init(id: Int, error: ProtocolError) {
        self.id = id
        var e = error
        e.requestID = id
        self.outcome = .failure(e)
    }
}

/// One item of a streaming verb's output (watch, logs, export), sent before the final response.
public struct Event: Sendable, Equatable {
    public var id: Int
    public var event: JSONValue

    public init(id: Int, event: JSONValue) {
        self.id = id
        self.event = event
    }
}

/// What a client sends.
public enum ClientMessage: Sendable, Equatable {
    case hello(ClientHello)
    case request(Request)
}

/// What a server sends. `error` is an error that answers no request (a bad frame, a failed
/// handshake); an error that answers a request is a `response`.
public enum ServerMessage: Sendable, Equatable {
    case hello(ServerHello)
    case response(Response)
    case event(Event)
    case error(ProtocolError)
}

// MARK: - Encoding

extension ProtocolError {
    /// `{"code":..., "message":..., "detail":...}` (detail only when there is one).
    var jsonValue: JSONValue {
        var o: [String: JSONValue] = ["code": .string(code.rawValue), "message": .string(message)]
        if let detail { o["detail"] = .string(detail) }
        return .object(o)
    }
}

extension ClientMessage: Encodable {
    /// The message as a JSON object, built directly (no Encoder round trip).
    public var jsonValue: JSONValue {
        switch self {
        case .hello(let h):
            ["type": "hello", "version": .number(Double(h.version)), "client": .string(h.client)]
        case .request(let r):
            ["type": "request", "id": .number(Double(r.id)), "verb": .string(r.verb.rawValue), "args": r.args]
        }
    }

    public func encode(to encoder: any Encoder) throws { try jsonValue.encode(to: encoder) }

    /// The message as a frame (length prefix and JSON).
    public func frame() throws(ProtocolError) -> [UInt8] { try Frame.encode(json: jsonValue.jsonBytes()) }
}

extension ServerMessage: Encodable {
    /// The message as a JSON object, built directly (no Encoder round trip).
    public var jsonValue: JSONValue {
        switch self {
        case .hello(let h):
            return ["type": "hello", "version": .number(Double(h.version)), "server": .string(h.server), "uid": .number(Double(h.uid))]
        case .response(let r):
            switch r.outcome {
            case .success(let result):
                return ["type": "response", "id": .number(Double(r.id)), "ok": true, "result": result]
            case .failure(let error):
                return ["type": "response", "id": .number(Double(r.id)), "ok": false, "error": error.jsonValue]
            }
        case .event(let e):
            return ["type": "event", "id": .number(Double(e.id)), "event": e.event]
        case .error(let error):
            return ["type": "error", "error": error.jsonValue]
        }
    }

    public func encode(to encoder: any Encoder) throws { try jsonValue.encode(to: encoder) }

    /// The message as a frame (length prefix and JSON).
    public func frame() throws(ProtocolError) -> [UInt8] { try Frame.encode(json: jsonValue.jsonBytes()) }
}

// MARK: - Strict decoding

/// The top-level object of a frame and its `type`.
private func envelope(_ json: [UInt8]) throws(ProtocolError) -> (JSONValue, String) {
    let value = try JSONValue.parse(json)
    guard case .object(let fields) = value else {
        throw ProtocolError(.badFrame, "a frame holds one JSON object, found \(value.typeName)")
    }
    guard let type = fields["type"] else { throw ProtocolError(.badFrame, "message without a \"type\" field") }
    guard let name = type.stringValue else {
        throw ProtocolError(.badFrame, "field \"type\" must be a string, found \(type.typeName)")
    }
    return (value, name)
}

private func unknownType(_ type: String, expected: [String]) -> ProtocolError {
    ProtocolError(
        .badFrame, "unknown message type \"\(type)\"", detail: "expected \(expected.joined(separator: " or "))")
}

private func readError(_ value: JSONValue, context: String) throws(ProtocolError) -> ProtocolError {
    let r = try JSONObjectReader(value, context: context, allowed: ["code", "message", "detail"])
    let raw = try r.string("code")
    guard let code = ErrorCode(rawValue: raw) else {
        throw ProtocolError(.invalidArgument, "\(context): unknown error code \"\(raw)\"")
    }
    var detail: String? = nil
    if let d = r.optional("detail"), d != .null {
        guard let s = d.stringValue else { throw r.mismatch("detail", "a string", d) }
        detail = s
    }
    return ProtocolError(code, try r.string("message"), detail: detail)
}

extension ClientMessage {
    /// Reads a frame from a client: a hello or a request, nothing else, no unknown fields.
    /// An error that concerns a request carries its `requestID` (answer it with a response);
    /// one without is answered with an error frame.
    public static func decode(_ json: [UInt8]) throws(ProtocolError) -> ClientMessage {
        let (value, type) = try envelope(json)
        switch type {
        case "hello":
            // Only the version is read first: another version's hello may have other fields.
            let version = value["version"]
            guard let v = version?.intValue else {
                throw ProtocolError(.invalidArgument, "hello: field \"version\" must be an integer")
            }
            if v != ControlProtocol.version {
                return .hello(ClientHello(version: v, client: value["client"]?.stringValue ?? ""))
            }
            let r = try JSONObjectReader(value, context: "hello", allowed: ["type", "version", "client"])
            return .hello(ClientHello(version: v, client: try r.string("client")))
        case "request":
            let id = value["id"]?.intValue
            let r = try JSONObjectReader(value, context: "request", allowed: ["type", "id", "verb", "args"], requestID: id)
            let requestID = try r.int("id")
            let name = try r.string("verb")
            guard let verb = Verb(rawValue: name) else {
                throw ProtocolError(
                    .unknownVerb, "request \(requestID): unknown verb \"\(name)\"",
                    detail: "verbs: \(Verb.allCases.map(\.rawValue).joined(separator: ", "))", requestID: requestID)
            }
            return .request(Request(id: requestID, verb: verb, args: try r.object("args")))
        default:
            throw unknownType(type, expected: ["hello", "request"])
        }
    }
}

extension ServerMessage {
    /// Reads a frame from a server: a hello, a response, an event or an error, strictly.
    public static func decode(_ json: [UInt8]) throws(ProtocolError) -> ServerMessage {
        let (value, type) = try envelope(json)
        switch type {
        case "hello":
            let version = value["version"]
            guard let v = version?.intValue else {
                throw ProtocolError(.badFrame, "hello: field \"version\" must be an integer")
            }
            if v != ControlProtocol.version {
                return .hello(ServerHello(version: v, server: value["server"]?.stringValue ?? "", uid: 0))
            }
            let r = try JSONObjectReader(value, context: "hello", allowed: ["type", "version", "server", "uid"])
            let uid = try r.int("uid")
            guard let u = UInt32(exactly: uid) else { throw r.mismatch("uid", "a uid", .number(Double(uid))) }
            return .hello(ServerHello(version: v, server: try r.string("server"), uid: u))
        case "response":
            let ok = value["ok"]?.boolValue
            let allowed = ["type", "id", "ok", ok == false ? "error" : "result"]
            let r = try JSONObjectReader(value, context: "response", allowed: allowed)
            let id = try r.int("id")
            if try r.bool("ok") {
                return .response(Response(id: id, result: try r.required("result")))
            }
            return .response(Response(id: id, error: try readError(try r.required("error"), context: "response.error")))
        case "event":
            let r = try JSONObjectReader(value, context: "event", allowed: ["type", "id", "event"])
            return .event(Event(id: try r.int("id"), event: try r.required("event")))
        case "error":
            let r = try JSONObjectReader(value, context: "error", allowed: ["type", "error"])
            return .error(try readError(try r.required("error"), context: "error.error"))
        default:
            throw unknownType(type, expected: ["hello", "response", "event", "error"])
        }
    }
}

/// The server's side of the handshake.
public enum Handshake {
    /// Answers a client's first frame. `accepted` false means: send `reply` (an error), then close.
    public static func answer(_ frame: ReceivedFrame, server: String = "lapwingd \(ControlProtocol.softwareVersion)", peerUID: UInt32)
        -> (reply: ServerMessage, accepted: Bool)
    {
        for fd in frame.fds { fd.close() }
        do {
            guard case .hello(let hello) = try ClientMessage.decode(frame.json) else {
                return (.error(ProtocolError(.badFrame, "the first message must be a hello")), false)
            }
            try hello.check()
            if !frame.fds.isEmpty {
                return (.error(ProtocolError(.invalidArgument, "hello: descriptors attached to a hello")), false)
            }
            return (.hello(ServerHello(server: server, uid: peerUID)), true)
        } catch {
            return (.error(error), false)
        }
    }
}
