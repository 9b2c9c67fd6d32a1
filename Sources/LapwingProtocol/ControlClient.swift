import LapwingCore

/// A small synchronous client of the control socket, for the CLI: connect, hello, then one request
/// at a time.
///
/// Throws `ProtocolError` for what the server answered (or a server that breaks the protocol) and
/// `LapwingError` for the socket itself (no daemon at the path, a timeout: errno ETIMEDOUT).
public final class ControlClient {
    public let connection: UnixConnection
    /// The server's hello (its version string, and the uid it sees us as).
    public private(set) var server: ServerHello
    /// How long to wait for each frame from the server; nil waits for ever (for `watch`).
    public var timeout: Duration?
    private var nextID = 1

    /// Connects to `path` and says hello.
    public convenience init(
        path: String, client: String = "lapwing \(ControlProtocol.softwareVersion)", timeout: Duration? = .seconds(30)
    ) throws {
        try self.init(connection: try UnixConnection.connect(path: path), client: client, timeout: timeout)
    }

    /// Says hello over a connection that is already open.
    public init(connection: UnixConnection, client: String = "lapwing \(ControlProtocol.softwareVersion)", timeout: Duration? = .seconds(30)) throws {
        self.connection = connection
        self.timeout = timeout
        try connection.send(.hello(ClientHello(client: client)))
        let reply = try ControlClient.receive(connection, timeout: timeout, waitingFor: "the server's hello").0
        switch reply {
        case .hello(let hello):
            guard hello.version == ControlProtocol.version else {
                throw ProtocolError(
                    .unsupportedVersion, "\(connection.name): the server speaks protocol version \(hello.version)",
                    detail: "this client speaks version \(ControlProtocol.version)")
            }
            server = hello
        case .error(let error):
            throw error
        default:
            throw ProtocolError(.badFrame, "\(connection.name): the server did not answer the hello with a hello")
        }
    }

    /// Sends a request and waits for its final response; returns the result, or throws the server's error.
    /// `fds` (for submit) are attached to the request's frame; they stay open here.
    @discardableResult
    public func call(_ verb: Verb, args: some Encodable = NoArgs(), fds: [Int32] = []) throws -> JSONValue {
        try stream(verb, args: args, fds: fds) { event in
            throw ProtocolError(.badFrame, "\(connection.name): an event for \(verb.rawValue), which does not stream", detail: event.jsonText())
        }
    }

    /// Sends a request, hands every event to `onEvent` as it arrives, and returns the final result.
    @discardableResult
    public func stream(
        _ verb: Verb, args: some Encodable = NoArgs(), fds: [Int32] = [], onEvent: (JSONValue) throws -> Void
    ) throws -> JSONValue {
        try exchange(verb, args: args, fds: fds, onEvent: onEvent).result
    }

    /// Like `call`, also returning the descriptors attached to the response (`export` and `logs`
    /// send the file itself that way). The caller owns them.
    public func callReceivingDescriptors(_ verb: Verb, args: some Encodable = NoArgs()) throws -> (
        result: JSONValue, fds: [OwnedFD]
    ) {
        try exchange(verb, args: args, fds: []) { event in
            throw ProtocolError(.badFrame, "\(connection.name): an event for \(verb.rawValue), which does not stream", detail: event.jsonText())
        }
    }

    private func exchange(
        _ verb: Verb, args: some Encodable, fds: [Int32], onEvent: (JSONValue) throws -> Void
    ) throws -> (result: JSONValue, fds: [OwnedFD]) {
        let id = nextID
        nextID += 1
        try connection.send(.request(try Request(id: id, verb: verb, encoding: args)), fds: fds)
        while true {
            let (message, received) = try ControlClient.receive(connection, timeout: timeout, waitingFor: "the answer to request \(id)")
            switch message {
            case .event(let event) where event.id == id:
                try onEvent(event.event)
            case .response(let response) where response.id == id:
                switch response.outcome {
                case .success(let result): return (result, received)
                case .failure(let error): throw error
                }
            case .error(let error):
                throw error
            case .hello:
                throw ProtocolError(.badFrame, "\(connection.name): a second hello from the server")
            case .event(let event):
                throw ProtocolError(.badFrame, "\(connection.name): an event for request \(event.id) while waiting for \(id)")
            case .response(let response):
                throw ProtocolError(.badFrame, "\(connection.name): a response to request \(response.id) while waiting for \(id)")
            }
        }
    }

    private static func receive(_ connection: UnixConnection, timeout: Duration?, waitingFor what: String) throws -> (
        ServerMessage, [OwnedFD]
    ) {
        guard let frame = try connection.receiveFrame(timeout: timeout) else {
            throw ProtocolError(.internalError, "\(connection.name): the server closed the connection", detail: "while waiting for \(what)")
        }
        // Descriptors come only with the responses of export and logs; others close with the frame.
        return (try ServerMessage.decode(frame.json), frame.fds)
    }
}
