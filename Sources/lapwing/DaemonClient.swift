import Foundation
import LapwingCore
import LapwingJob
import LapwingEngine
import LapwingProtocol

#if canImport(Glibc)
import Glibc
#endif

/// The CLI's connection to a daemon: protocol v1 through `ControlClient`, with results decoded
/// into the daemon's types and failures turned into messages and exit codes.
final class DaemonClient {
    let client: ControlClient
    let path: String

    /// Connects to `socket`, else $LAPWING_SOCKET, else the user's daemon if one listens, else
    /// the system daemon.
    init(socket: String?) throws(CLIFailure) {
        let path = Self.socketPath(socket)
        self.path = path
        do {
            client = try ControlClient(path: path, timeout: nil)  // watch may wait long (a queued job)
        } catch let e as LapwingError {
            if e.code == .permissionDenied {
                throw CLIFailure(
                    message: "permission denied on lapwingd's socket \(path): \(e.detail ?? e.message); "
                        + "members of group lapwing may use the system daemon (or run your own: `lapwingd --user`)",
                    code: CLIExit.permission)
            }
            throw CLIFailure(
                message: "cannot reach lapwingd at \(path): \(e.detail ?? e.message); "
                    + "start one with `lapwingd --user` (or the lapwingd service)",
                code: CLIExit.unreachable)
        } catch {
            throw CLIFailure(message: "cannot reach lapwingd at \(path): \(error)", code: CLIExit.unreachable)
        }
    }

    /// `socket`, else $LAPWING_SOCKET, else the user's daemon's socket if it exists, else the
    /// system daemon's if it exists, else the user's.
    static func socketPath(_ socket: String?) -> String {
        let user = ControlProtocol.userSocketPath()
        let found = [user, ControlProtocol.systemSocketPath].first { (p: String) in access(p, F_OK) == 0 }
        let fromEnvironment = getenv("LAPWING_SOCKET").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
        return socket ?? fromEnvironment ?? found ?? user
    }

    func call<R: Decodable>(_ verb: Verb, _ args: some Encodable = NoArgs(), fds: [Int32] = []) throws -> R {
        try Self.translate { try client.call(verb, args: args, fds: fds).decode(as: R.self) }
    }

    func stream<R: Decodable>(_ verb: Verb, _ args: some Encodable, onEvent: (HostEvent) -> Void) throws -> R {
        try Self.translate {
            try client.stream(verb, args: args) { value in
                if let e = try? value.decode(as: HostEvent.self) { onEvent(e) }
            }.decode(as: R.self)
        }
    }

    /// A call whose response carries descriptors (export, logs); the caller closes them.
    func callWithDescriptors<R: Decodable>(_ verb: Verb, _ args: some Encodable) throws -> (R, [Int32]) {
        try Self.translate {
            let (result, fds) = try client.callReceivingDescriptors(verb, args: args)
            return (try result.decode(as: R.self), fds.map { $0.release() })
        }
    }

    /// The daemon's structured errors as CLI failures with their exit codes.
    static func translate<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as ProtocolError {
            let code: Int32
            switch e.code {
            case .permissionDenied: code = CLIExit.permission
            case .noSuchJob: code = CLIExit.noSuchJob
            case .invalidArgument, .unknownField, .unknownVerb: code = CLIExit.usage
            default: code = CLIExit.failure
            }
            throw CLIFailure(message: e.detail.map { "\(e.message): \($0)" } ?? e.message, code: code)
        } catch let e as LapwingError {
            throw CLIFailure(e)
        }
    }
}
