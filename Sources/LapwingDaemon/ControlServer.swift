import CLapwing
import Foundation
import LapwingCore
import LapwingEngine
import LapwingProtocol
import LapwingTopology
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The control socket (protocol v1, docs/protocol.md): one thread, one epoll loop over the
/// listener, every connection and a wake-up pipe (epoll, not poll: with hundreds of idle
/// watchers, each wake-up costs the one descriptor that is ready, not all of them). A connection that misbehaves (bad frames,
/// oversize frames, never reading its replies) pays alone: it gets a structured error and is
/// closed; everyone else is served as before.
public final class ControlServer: @unchecked Sendable {
    /// Replies a client has not read beyond this are its problem: the connection is dropped.
    static let maxOutbox = 8 << 20

    final class Connection {
        let id: Int
        let fd: Int32
        let uid: UInt32
        let pid: Int32
        var decoder = FrameDecoder()
        var outbox: [(bytes: [UInt8], fds: [OwnedFD])] = []
        var outboxBytes = 0
        var sentOfFirst = 0
        var greeted = false
        var closeAfterFlush = false
        /// The epoll interest now registered (LW_EV_IN / LW_EV_OUT bits).
        var interest: UInt32 = UInt32(LW_EV_IN)
        var watching: [(job: String, token: Int, request: Int)] = []

        init(id: Int, fd: Int32, uid: UInt32, pid: Int32) {
            self.id = id
            self.fd = fd
            self.uid = uid
            self.pid = pid
        }
    }

    let config: DaemonConfig
    let manager: JobManager
    let log: @Sendable (String) -> Void
    private let listenFD: Int32
    private let ownsSocketFile: Bool
    private var wake: [Int32] = [-1, -1]
    private var ep: Int32 = -1
    var connections: [Int32: Connection] = [:]
    private var nextID = 0
    /// Each job's record as JSON text, kept until the record changes: `status` and `list` are
    /// most of the traffic, and encoding a record was most of a request's cost.
    var encodedRecords: [String: (record: JobRecord, json: [UInt8])] = [:]
    /// Frames produced on other threads (watch events), per connection id.
    let inbox = Mutex<[Int: [[UInt8]]]>([:])
    private let running = Atomic<Bool>(false)
    private let stopRequested = Atomic<Bool>(false)

    public init(config: DaemonConfig, manager: JobManager, socketMode: mode_t, activated: Int32? = nil,
                log: @escaping @Sendable (String) -> Void) throws(LapwingError) {
        self.config = config
        self.manager = manager
        self.log = log
        if let activated {
            listenFD = activated
            ownsSocketFile = false
            _ = lw_set_nonblocking(activated, 1)
        } else {
            let path = config.socketPath
            let dir = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
            // The directory is as private as the socket: others reach it only if the socket lets them.
            if !dir.isEmpty { try makeDirectories(dir, mode: socketMode & 0o077 != 0 ? 0o755 : 0o700) }
            // A socket file nobody listens on is stale (a daemon that died); one that answers is not ours to take.
            if access(path, F_OK) == 0 {
                let probe = lw_unix_connect(path)
                if probe >= 0 {
                    close(probe)
                    throw LapwingError(.busy, "\(path): another daemon is listening there")
                }
                unlink(path)
            }
            listenFD = try shimCall("listen", object: path) { lw_unix_listen(path, socketMode, 512) }
            ownsSocketFile = true
        }
        try shimCall("pipe2", object: "control server wake-up pipe") { lw_pipe_cloexec(&wake) }
        _ = lw_set_nonblocking(wake[0], 1)
        _ = lw_set_nonblocking(wake[1], 1)
        do throws(LapwingError) {
            ep = try shimCall("epoll_create1", object: "control server") { lw_epoll_create() }
            for fd in [listenFD, wake[0]] {
                try shimCall("epoll_ctl", object: "control server") { lw_epoll_watch(ep, fd, UInt32(LW_EV_IN), 1) }
            }
        } catch {
            if ep >= 0 { close(ep) }
            close(wake[0])
            close(wake[1])
            if ownsSocketFile { unlink(config.socketPath) }
            close(listenFD)
            throw error
        }
    }

    public var isServing: Bool { running.load(ordering: .acquiring) }

    public func stop() {
        stopRequested.store(true, ordering: .releasing)
        poke()
    }

    func poke() {
        var b: UInt8 = 1
        _ = write(wake[1], &b, 1)
    }

    /// Serves until `stop()`; calls `onListening` once the socket accepts connections.
    public func serve(onListening: () -> Void) {
        running.store(true, ordering: .releasing)
        defer {
            for c in connections.values { drop(c, why: nil) }
            close(listenFD)
            if ownsSocketFile { unlink(config.socketPath) }
            close(wake[0])
            close(wake[1])
            close(ep)
            running.store(false, ordering: .releasing)
        }
        onListening()
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        var readyFDs = [Int32](repeating: -1, count: 64)
        var readyEvents = [UInt32](repeating: 0, count: 64)
        let (evIn, evOut) = (UInt32(LW_EV_IN), UInt32(LW_EV_OUT))
        let (evHup, evErr) = (UInt32(LW_EV_HUP), UInt32(LW_EV_ERR))
        while !stopRequested.load(ordering: .acquiring) {
            let n = lw_epoll_wait(ep, &readyFDs, &readyEvents, 64, 1000)
            if n < 0 && n != -EINTR {
                log("control socket: epoll_wait: \(errnoDescription(-n))")
                break
            }
            var woken = false
            for k in 0..<max(0, Int(n)) {
                let (fd, ev) = (readyFDs[k], readyEvents[k])
                if fd == listenFD {
                    acceptAll()
                } else if fd == wake[0] {
                    woken = true
                } else if let c = connections[fd] {
                    if ev & (evIn | evHup) != 0 { readFrom(c, &buf) }
                    if connections[fd] === c, ev & evOut != 0 { flush(c) }
                    if connections[fd] === c, ev & evErr != 0 { drop(c, why: nil) }
                }
            }
            if woken {
                var drain = [UInt8](repeating: 0, count: 256)
                while read(wake[0], &drain, 256) > 0 {}
                deliverInbox()
            }
        }
    }

    private func acceptAll() {
        while true {
            let fd = lw_unix_accept(listenFD)
            if fd < 0 { return }
            _ = lw_set_nonblocking(fd, 1)
            var pid: Int32 = 0, uid: UInt32 = 0, gid: UInt32 = 0
            if lw_peer_credentials(fd, &pid, &uid, &gid) != 0 {
                close(fd)
                continue
            }
            if lw_epoll_watch(ep, fd, UInt32(LW_EV_IN), 1) != 0 {
                close(fd)
                continue
            }
            nextID += 1
            connections[fd] = Connection(id: nextID, fd: fd, uid: uid, pid: pid)
        }
    }

    private func readFrom(_ c: Connection, _ buf: inout [UInt8]) {
        var received = [Int32](repeating: -1, count: Int(LW_MAX_FDS_PER_FRAME))
        while true {
            var nfds: Int32 = 0, truncated: Int32 = 0
            let n = buf.withUnsafeMutableBytes { b in
                received.withUnsafeMutableBufferPointer { f in
                    lw_recv_with_fds(c.fd, b.baseAddress, b.count, f.baseAddress, Int32(f.count), &nfds, &truncated)
                }
            }
            if n == -Int(EAGAIN) || n == -Int(EINTR) { break }
            if n <= 0 {
                // End of stream (or a reset): a half-closed client still gets what is queued.
                if n == 0 && !c.outbox.isEmpty {
                    shutdown(c.fd, Int32(SHUT_RD))
                    return closeWhenFlushed(c)
                }
                drop(c, why: nil)
                return
            }
            c.decoder.feed(buf[0..<n], fds: (0..<Int(nfds)).map { OwnedFD(received[$0]) })
            while true {
                let frame: ReceivedFrame?
                do throws(ProtocolError) {
                    frame = try c.decoder.next()
                } catch {
                    // The stream is out of step: answer once and close.
                    send(c, .error(error))
                    closeWhenFlushed(c)
                    return
                }
                guard let frame else { break }
                handle(c, frame)
                if connections[c.fd] !== c || c.closeAfterFlush { return }
            }
        }
    }

    // MARK: Output

    /// Sends a result that is JSON text already (with `fds` attached); one too large for a frame
    /// gets an error response instead.
    func respond(_ c: Connection, id: Int, resultJSON: [UInt8], fds: [OwnedFD] = []) {
        do throws(ProtocolError) {
            enqueue(c, try Frame.response(id: id, resultJSON: resultJSON), fds: fds)
        } catch {
            fds.forEach { $0.close() }
            send(c, .response(Response(id: id, error: error)))
        }
    }

    /// Sends `result` encoded straight to JSON text (no JSONValue in between).
    func respond<R: Encodable>(_ c: Connection, id: Int, result: R, fds: [OwnedFD] = []) {
        do throws(ProtocolError) {
            respond(c, id: id, resultJSON: try Frame.json(encoding: result), fds: fds)
        } catch {
            fds.forEach { $0.close() }
            send(c, .response(Response(id: id, error: error)))
        }
    }

    func send(_ c: Connection, _ message: ServerMessage) {
        guard let f = try? message.frame() else { return }
        enqueue(c, f, fds: [])
    }

    private func enqueue(_ c: Connection, _ bytes: [UInt8], fds: [OwnedFD]) {
        c.outbox.append((bytes, fds))
        c.outboxBytes += bytes.count
        if c.outboxBytes > Self.maxOutbox {
            return drop(c, why: "it stopped reading its replies (\(c.outboxBytes) bytes queued)")
        }
        flush(c)
    }

    private func deliverInbox() {
        let frames = inbox.withLock { s in
            defer { s = [:] }
            return s
        }
        for (id, list) in frames {
            guard let c = connections.values.first(where: { $0.id == id }) else { continue }
            for f in list { enqueue(c, f, fds: []) }
        }
    }

    private func flush(_ c: Connection) {
        while let first = c.outbox.first {
            let fds = c.sentOfFirst == 0 ? first.fds.map(\.rawValue) : []
            let n = first.bytes.withUnsafeBytes { b in
                fds.withUnsafeBufferPointer { f in
                    lw_send_with_fds(c.fd, b.baseAddress! + c.sentOfFirst, b.count - c.sentOfFirst, f.baseAddress, Int32(f.count))
                }
            }
            if n == -Int(EAGAIN) || n == -Int(EINTR) { return updateInterest(c) }
            if n < 0 { return drop(c, why: nil) }
            if c.sentOfFirst == 0 { first.fds.forEach { $0.close() } }
            c.sentOfFirst += n
            if c.sentOfFirst == first.bytes.count {
                c.outboxBytes -= first.bytes.count
                c.outbox.removeFirst()
                c.sentOfFirst = 0
            } else if c.sentOfFirst > 0 && !first.fds.isEmpty {
                c.outbox[0].fds = []
            }
        }
        if c.closeAfterFlush { return drop(c, why: nil) }
        updateInterest(c)
    }

    /// Reads while the connection may still send, writes while replies wait for it.
    private func updateInterest(_ c: Connection) {
        let want = (c.closeAfterFlush ? 0 : UInt32(LW_EV_IN)) | (c.outbox.isEmpty ? 0 : UInt32(LW_EV_OUT))
        guard want != c.interest else { return }
        c.interest = want
        _ = lw_epoll_watch(ep, c.fd, want, 0)
    }

    /// Closes the connection once what is queued for it has gone out.
    func closeWhenFlushed(_ c: Connection) {
        guard connections[c.fd] === c else { return }
        c.closeAfterFlush = true
        flush(c)
    }

    private func drop(_ c: Connection, why: String?) {
        if let why { log("control socket: dropping connection of pid \(c.pid) (uid \(c.uid)): \(why)") }
        for w in c.watching { manager.unwatch(w.job, w.token) }
        for item in c.outbox { item.fds.forEach { $0.close() } }
        c.outbox = []
        connections[c.fd] = nil
        _ = lw_epoll_forget(ep, c.fd)
        close(c.fd)
    }
}
