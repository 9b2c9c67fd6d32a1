import Foundation
import LapwingCore
import LapwingProtocol
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Runs `body`, expecting a ProtocolError with `code`; returns it for more checks.
@discardableResult
func expectProtocolError(
    _ code: ErrorCode, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) -> ProtocolError? {
    do {
        try body()
        Issue.record("expected a \(code.rawValue) error, got none", sourceLocation: sourceLocation)
    } catch let error as ProtocolError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    } catch {
        Issue.record("expected a \(code.rawValue) ProtocolError, got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

/// A fresh directory under /tmp (short: socket paths must fit in 108 bytes), removed by `remove()`.
struct ScratchDirectory {
    let path: String

    init(_ tag: String) throws {
        path = "/tmp/lwp-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Bytes of a message's JSON text.
func json(_ text: String) -> [UInt8] { Array(text.utf8) }

/// The JSON payload of a frame (without its length prefix).
func payload(_ frame: [UInt8]) -> [UInt8] { Array(frame.dropFirst(4)) }

/// Writes raw bytes to a connection's socket (for malformed streams).
func writeRaw(_ connection: UnixConnection, _ bytes: [UInt8]) {
    let n = bytes.withUnsafeBytes { Glibc.write(connection.fd, $0.baseAddress!, $0.count) }
    precondition(n == bytes.count)
}
