import CLapwing
import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// SO_PEERCRED of a connected peer: who it was when it connected.
public struct PeerCredentials: Sendable, Equatable, CustomStringConvertible {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    public var description: String { "pid \(pid), uid \(uid), gid \(gid)" }
}

/// One connected Unix stream socket that sends and receives frames, with descriptors attached.
/// Owns its fd: `close()` or deinit closes it.
///
/// Receiving throws `LapwingError` when the socket fails or times out (errno ETIMEDOUT) and
/// `ProtocolError` when the stream is not frames (`frame_too_large`, `bad_frame`).
public final class UnixConnection {
    /// The descriptor, for poll. Do not close it; -1 after `close()`.
    public private(set) var fd: Int32
    /// Names the connection in errors: the socket's path, or "peer pid 42".
    public var name: String
    private var decoder = FrameDecoder()
    private var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)
    private var nonBlocking = false
    private var atEnd = false

    /// Adopts a connected socket.
    public init(adopting fd: Int32, name: String) {
        self.fd = fd
        self.name = name
    }

    deinit { close() }

    /// Connects to the listening socket at `path`. The connection blocks.
    public static func connect(path: String) throws(LapwingError) -> UnixConnection {
        let fd = try shimCall("connect", object: path) { lw_unix_connect(path) }
        return UnixConnection(adopting: fd, name: path)
    }

    /// A connected pair (socketpair), both blocking.
    public static func pair() throws(LapwingError) -> (UnixConnection, UnixConnection) {
        var fds: [Int32] = [-1, -1]
        try shimCall("socketpair", object: "socket pair") { fds.withUnsafeMutableBufferPointer { lw_unix_socketpair($0.baseAddress!) } }
        return (UnixConnection(adopting: fds[0], name: "socket pair end 0"), UnixConnection(adopting: fds[1], name: "socket pair end 1"))
    }

    public func close() {
        if fd >= 0 { _ = Glibc.close(fd) }
        fd = -1
    }

    public func setNonBlocking(_ on: Bool = true) throws(LapwingError) {
        try shimCall("fcntl(O_NONBLOCK)", object: name) { lw_set_nonblocking(fd, on ? 1 : 0) }
        nonBlocking = on
    }

    /// shutdown(SHUT_WR): the peer reads end of stream after what was sent.
    public func shutdownWrite() throws(LapwingError) {
        try syscall("shutdown", object: name) { Glibc.shutdown(fd, Int32(SHUT_WR)) }
    }

    /// SO_PEERCRED: the pid, uid and gid of the process at the other end when it connected.
    public func peerCredentials() throws(LapwingError) -> PeerCredentials {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
        try shimCall("getsockopt(SO_PEERCRED)", object: name) { lw_peer_credentials(fd, &pid, &uid, &gid) }
        return PeerCredentials(pid: pid, uid: uid, gid: gid)
    }

    // MARK: Sending

    /// Sends one whole frame (from `Frame.encode`), with `fds` attached to the sendmsg that carries
    /// its first bytes (SCM_RIGHTS; at most 16). The descriptors stay open here: the peer gets copies.
    /// Partial writes are continued; on a non-blocking socket EAGAIN waits in poll.
    public func send(frame: [UInt8], fds: [Int32] = []) throws(LapwingError) {
        guard fds.count <= ControlProtocol.maxDescriptorsPerFrame else {
            throw LapwingError(
                .invalidArgument, "\(name): \(fds.count) descriptors for one frame",
                detail: "at most \(ControlProtocol.maxDescriptorsPerFrame)")
        }
        var offset = 0
        var attach = fds
        while offset < frame.count {
            let n = frame.withUnsafeBytes { bytes in
                attach.withUnsafeBufferPointer { fdp in
                    lw_send_with_fds(fd, bytes.baseAddress! + offset, bytes.count - offset, fdp.baseAddress, Int32(fdp.count))
                }
            }
            if n > 0 {
                offset += n
                attach = []
                continue
            }
            let err = Int32(truncatingIfNeeded: -n)
            if n == 0 || err == EINTR { continue }
            if err == EAGAIN || err == EWOULDBLOCK {
                try wait(for: Int16(POLLOUT), deadline: nil)
                continue
            }
            throw LapwingError.system("sendmsg", errno: err, object: name)
        }
    }

    /// Encodes and sends a client message.
    public func send(_ message: ClientMessage, fds: [Int32] = []) throws {
        try send(frame: try message.frame(), fds: fds)
    }

    /// Encodes and sends a server message.
    public func send(_ message: ServerMessage, fds: [Int32] = []) throws {
        try send(frame: try message.frame(), fds: fds)
    }

    // MARK: Receiving

    /// Waits for the next complete frame. Returns nil at the end of the stream (the peer closed
    /// between frames). A timeout throws LapwingError with errno ETIMEDOUT; an end of stream inside
    /// a frame throws `bad_frame`.
    public func receiveFrame(timeout: Duration? = nil) throws -> ReceivedFrame? {
        let deadline = timeout.map { ContinuousClock.now + $0 }
        while true {
            if let frame = try decoder.next() { return frame }
            if atEnd {
                if decoder.bufferedByteCount == 0 { return nil }
                throw ProtocolError(
                    .badFrame, "\(name): the stream ended inside a frame",
                    detail: "\(decoder.bufferedByteCount) bytes of an unfinished frame")
            }
            if deadline != nil || nonBlocking { try wait(for: Int16(POLLIN), deadline: deadline) }
            _ = try readAvailable()
        }
    }

    /// One recvmsg into the frame decoder (for a poll loop on a non-blocking socket; then call
    /// `nextFrame()` until it returns nil). Returns false at the end of the stream.
    @discardableResult
    public func readAvailable() throws -> Bool {
        if atEnd { return false }
        var fds = [Int32](repeating: -1, count: ControlProtocol.maxDescriptorsPerFrame)
        var count: Int32 = 0
        var truncated: Int32 = 0
        while true {
            let n = readBuffer.withUnsafeMutableBytes { b in
                fds.withUnsafeMutableBufferPointer { f in
                    lw_recv_with_fds(fd, b.baseAddress!, b.count, f.baseAddress!, Int32(f.count), &count, &truncated)
                }
            }
            if n < 0 {
                let err = Int32(truncatingIfNeeded: -n)
                if err == EINTR { continue }
                if err == EAGAIN || err == EWOULDBLOCK { return true }
                throw LapwingError.system("recvmsg", errno: err, object: name)
            }
            let owned = fds[0..<Int(count)].map { OwnedFD($0) }
            if truncated != 0 {
                throw ProtocolError(
                    .invalidArgument, "\(name): too many descriptors attached to one frame",
                    detail: "at most \(ControlProtocol.maxDescriptorsPerFrame)")
            }
            if n == 0 {
                atEnd = true
                return false
            }
            decoder.feed(readBuffer[0..<n], fds: owned)
            return true
        }
    }

    /// The next frame already read by `readAvailable()`, or nil.
    public func nextFrame() throws(ProtocolError) -> ReceivedFrame? { try decoder.next() }

    /// Whether the peer has closed its end (seen by a read).
    public var reachedEnd: Bool { atEnd }

    private func wait(for events: Int16, deadline: ContinuousClock.Instant?) throws(LapwingError) {
        while true {
            var timeoutMS: Int32 = -1
            if let deadline {
                let left = deadline - ContinuousClock.now
                if left <= .zero {
                    throw LapwingError.system("poll", errno: ETIMEDOUT, object: name)
                }
                let (s, atto) = left.components
                timeoutMS = Int32(clamping: s * 1000 + atto / 1_000_000_000_000_000 + 1)
            }
            var p = pollfd(fd: fd, events: events, revents: 0)
            let r = try syscall("poll", object: name) { Glibc.poll(&p, 1, timeoutMS) }
            if r > 0 { return }
        }
    }
}
