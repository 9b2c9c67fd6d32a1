import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Constants of the control protocol.
public enum ControlProtocol {
    /// The protocol version this library speaks.
    public static let version = 1
    /// The software version sent in hellos ("lapwing 0.1.0", "lapwingd 0.1.0").
    public static let softwareVersion = "0.1.0"
    /// The largest frame payload (the JSON after the length prefix): 1 MiB.
    public static let maxFrameLength = 1 << 20
    /// The most descriptors one frame may carry.
    public static let maxDescriptorsPerFrame = 16

    /// Where the daemon listens: `/run/lapwing/control.sock` for the system service,
    /// `$XDG_RUNTIME_DIR/lapwing/control.sock` for a user's own daemon (nil without XDG_RUNTIME_DIR).
    public static func defaultSocketPath(system: Bool) -> String? {
        if system { return "/run/lapwing/control.sock" }
        guard let dir = ProcessInfo.processInfo.environment["XDG_RUNTIME_DIR"], !dir.isEmpty else { return nil }
        return dir + "/lapwing/control.sock"
    }
}

/// Owns one file descriptor: closes it on `close()` or in deinit, unless `release()` handed it on.
public final class OwnedFD: Sendable, CustomStringConvertible {
    private let fd: Mutex<Int32>

    public init(_ fd: Int32) { self.fd = Mutex(fd) }

    /// The descriptor, or -1 once closed or released.
    public var rawValue: Int32 { fd.withLock { $0 } }

    /// Gives up ownership: the caller closes the returned descriptor.
    public func release() -> Int32 {
        fd.withLock { fd in
            defer { fd = -1 }
            return fd
        }
    }

    public func close() {
        let old = release()
        if old >= 0 { _ = Glibc.close(old) }
    }

    deinit { close() }

    public var description: String { "fd \(rawValue)" }
}

/// One complete frame: its JSON payload and the descriptors that came with it.
public struct ReceivedFrame: Sendable {
    public var json: [UInt8]
    public var fds: [OwnedFD]

    public init(json: [UInt8], fds: [OwnedFD] = []) {
        self.json = json
        self.fds = fds
    }
}

/// Writes frames: a 4-byte big-endian length, then that many bytes of JSON.
public enum Frame {
    /// Frames the JSON encoding of `value`.
    public static func encode(_ value: some Encodable) throws(ProtocolError) -> [UInt8] {
        try encode(json: json(encoding: value))
    }

    /// The JSON text of `value` (JSONEncoder, slashes unescaped).
    public static func json(encoding value: some Encodable) throws(ProtocolError) -> [UInt8] {
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes]
            return Array(try encoder.encode(value))
        } catch {
            throw ProtocolError(.internalError, "cannot encode \(type(of: value)) as JSON", detail: "\(error)")
        }
    }

    /// The frame of a successful response whose result is JSON text already (a cached record):
    /// the same bytes as `ServerMessage.response(Response(id:result:)).frame()` for that value.
    public static func response(id: Int, resultJSON: [UInt8]) throws(ProtocolError) -> [UInt8] {
        var json: [UInt8] = []
        json.reserveCapacity(resultJSON.count + 48)
        json += #"{"id":"#.utf8
        json += String(id).utf8
        json += #","ok":true,"result":"#.utf8
        json += resultJSON
        json += #","type":"response"}"#.utf8
        return try encode(json: json)
    }

    /// Frames JSON text that is already encoded.
    public static func encode(json: [UInt8]) throws(ProtocolError) -> [UInt8] {
        guard !json.isEmpty else { throw ProtocolError(.badFrame, "empty frame") }
        guard json.count <= ControlProtocol.maxFrameLength else {
            throw ProtocolError(
                .frameTooLarge, "frame of \(json.count) bytes",
                detail: "the limit is \(ControlProtocol.maxFrameLength) bytes")
        }
        let n = UInt32(json.count)
        var out: [UInt8] = [UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)]
        out.reserveCapacity(4 + json.count)
        out += json
        return out
    }
}

/// Cuts a byte stream into frames, incrementally: feed what arrived, then pull complete frames
/// with `next()` until it returns nil.
///
/// Descriptors received with a chunk belong to the frame that holds the chunk's last byte: the sender
/// attaches them to the sendmsg of the frame's first bytes, and Linux ends a recvmsg after the
/// message that carried descriptors, so that message's bytes end the chunk. They are counted per
/// frame, over every chunk of it: more than `maxDescriptors` for one frame (a peer that sends a few
/// bytes and 16 descriptors at a time) fails the stream at once and closes them all.
///
/// Memory: once `next()` has returned nil, the decoder holds at most one unfinished frame (at most
/// 4 + `maxFrameLength` bytes) and the storage of a large frame is let go when the frame is taken.
/// A zero or oversize length prefix cannot be skipped: the stream is out of step from there, and
/// every later `next()` throws the same error (later bytes are dropped, later descriptors closed).
public struct FrameDecoder {
    public let maxFrameLength: Int
    public let maxDescriptors: Int
    /// Storage above this is given back when the frame that needed it has been taken.
    public static let keptCapacity = 64 << 10
    private var buffer: [UInt8] = []
    private var start = 0
    /// The stream offset of buffer[0].
    private var base = 0
    /// Descriptors waiting for their frame, keyed by the stream offset of their chunk's last byte.
    private var pending: [(offset: Int, fds: [OwnedFD])] = []
    private var pendingCount = 0
    private var failure: ProtocolError?

    public init(
        maxFrameLength: Int = ControlProtocol.maxFrameLength,
        maxDescriptors: Int = ControlProtocol.maxDescriptorsPerFrame
    ) {
        self.maxFrameLength = maxFrameLength
        self.maxDescriptors = maxDescriptors
    }

    /// Bytes fed but not yet returned as frames.
    public var bufferedByteCount: Int { buffer.count - start }

    /// Descriptors fed but not yet returned with their frame.
    public var pendingDescriptorCount: Int { pendingCount }

    /// Whether the stream has failed (every later `next()` throws).
    public var hasFailed: Bool { failure != nil }

    /// Adds received bytes and the descriptors that came with them.
    public mutating func feed(_ bytes: some Collection<UInt8>, fds: [OwnedFD] = []) {
        if failure != nil {
            fds.forEach { $0.close() }
            return
        }
        if !fds.isEmpty {
            if bytes.isEmpty {
                fds.forEach { $0.close() }
            } else {
                pending.append((base + buffer.count + bytes.count - 1, fds))
                pendingCount += fds.count
            }
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete frame, or nil when more bytes are needed.
    public mutating func next() throws(ProtocolError) -> ReceivedFrame? {
        if let failure { throw failure }
        guard buffer.count - start >= 4 else { return try needMore(frameLength: nil) }
        let n =
            Int(buffer[start]) << 24 | Int(buffer[start + 1]) << 16 | Int(buffer[start + 2]) << 8
            | Int(buffer[start + 3])
        if n == 0 {
            return try fail(ProtocolError(.badFrame, "frame with a zero length prefix", detail: "a frame holds 1 to \(maxFrameLength) bytes"))
        }
        if n > maxFrameLength {
            return try fail(
                ProtocolError(.frameTooLarge, "frame of \(n) bytes", detail: "the limit is \(maxFrameLength) bytes"))
        }
        guard buffer.count - start >= 4 + n else { return try needMore(frameLength: n) }
        let frameEnd = base + start + 4 + n
        var count = 0
        for p in pending {
            guard p.offset < frameEnd else { break }
            count += p.fds.count
        }
        if count > maxDescriptors { return try fail(tooManyDescriptors(count)) }
        let json = Array(buffer[(start + 4)..<(start + 4 + n)])
        start += 4 + n
        var fds: [OwnedFD] = []
        while let first = pending.first, first.offset < frameEnd {
            fds += first.fds
            pending.removeFirst()
        }
        pendingCount -= fds.count
        return ReceivedFrame(json: json, fds: fds)
    }

    /// Every frame fed so far has been taken: the bytes left are the start of one frame (of
    /// `frameLength` bytes when its prefix has arrived), and every descriptor pending is that frame's.
    private mutating func needMore(frameLength: Int?) throws(ProtocolError) -> ReceivedFrame? {
        if pendingCount > maxDescriptors { return try fail(tooManyDescriptors(pendingCount)) }
        if start > 0 {
            let rest = buffer.count - start
            if buffer.capacity > Self.keptCapacity && rest <= Self.keptCapacity {
                buffer = Array(buffer[start...])  // a large frame's storage goes back
            } else {
                buffer.removeFirst(start)
            }
            base += start
            start = 0
        }
        // A large frame gets its storage once instead of doubling into twice its size (once its
        // bytes arrive: a length prefix alone reserves nothing).
        if let frameLength, buffer.count > Self.keptCapacity, buffer.capacity < 4 + frameLength {
            buffer.reserveCapacity(4 + frameLength)
        }
        return nil
    }

    private func tooManyDescriptors(_ count: Int) -> ProtocolError {
        ProtocolError(
            .invalidArgument, "\(count) descriptors attached to one frame",
            detail: "a frame carries at most \(maxDescriptors); the connection closes")
    }

    private mutating func fail(_ error: ProtocolError) throws(ProtocolError) -> ReceivedFrame? {
        failure = error
        for p in pending { p.fds.forEach { $0.close() } }
        pending = []
        pendingCount = 0
        buffer = []
        start = 0
        throw error
    }
}
