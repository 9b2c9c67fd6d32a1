import CLapwing
import Foundation
import LapwingCore
import LapwingEngine
import LapwingJob
import LapwingProtocol
import LapwingTopology
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The control socket (protocol v1, docs/protocol.md): one thread, one epoll loop over the
/// listener, every connection and a wake-up pipe (epoll, not poll: with hundreds of idle
/// watchers, each wake-up costs the one descriptor that is ready, not all of them). A connection that misbehaves (bad frames,
/// oversize frames, too many descriptors, never reading its replies, missing a deadline, going
/// past a limit of `ControlLimits`) pays alone: it gets a structured error and is closed;
/// everyone else is served as before.
public final class ControlServer: @unchecked Sendable {
    /// Reads from one connection per wake-up, at most (64 KiB each): a fast sender does not keep
    /// the others waiting (epoll is level-triggered, so the rest is read on the next round).
    static let readsPerWake = 16

    final class Connection {
        let id: Int
        let fd: Int32
        let uid: UInt32
        let pid: Int32
        let acceptedAt: ContinuousClock.Instant
        var decoder = FrameDecoder()
        /// When the first byte of the unfinished frame arrived (nil between frames).
        var frameStartedAt: ContinuousClock.Instant?
        var outbox: [(bytes: [UInt8], fds: [OwnedFD])] = []
        var outboxBytes = 0
        var outboxDescriptors = 0
        var sentOfFirst = 0
        /// What it counts against its uid's and the daemon's budgets.
        var charge = ControlLedger.Charge()
        var greeted = false
        var closeAfterFlush = false
        /// The epoll interest now registered (LW_EV_IN / LW_EV_OUT bits).
        var interest: UInt32 = UInt32(LW_EV_IN)
        var watching: [(job: String, token: Int, request: Int)] = []

        init(id: Int, fd: Int32, uid: UInt32, pid: Int32, acceptedAt: ContinuousClock.Instant) {
            self.id = id
            self.fd = fd
            self.uid = uid
            self.pid = pid
            self.acceptedAt = acceptedAt
        }
    }

    let config: DaemonConfig
    /// `config.limits` with the environment's overrides, fitted to the descriptor limit.
    public let limits: ControlLimits
    private var ledger: ControlLedger
    let manager: JobManager
    let log: @Sendable (String) -> Void
    private let listenFD: Int32
    private let ownsSocketFile: Bool
    private var wake: [Int32] = [-1, -1]
    private var ep: Int32 = -1
    var connections: [Int32: Connection] = [:]
    private var nextID = 0
    /// Held open to be closed when accept() fails with EMFILE: room to take one connection and
    /// tell it the daemon is busy, instead of leaving it in the backlog (-1 while spent).
    private var reserveFD: Int32 = -1
    /// Set while the listener is left out of epoll (out of descriptors or memory): until the next sweep.
    private var listenerPaused = false
    private var nextSweep = ContinuousClock.now
    /// Connections refused or closed for a limit since the last sweep, by reason (logged once a sweep).
    private var limitEvents: [String: (count: Int, example: String)] = [:]
    /// Bytes of buffers let go since memory was last handed back to the kernel.
    private var releasedBytes = 0
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
        let wanted = try config.limits.overridden { DaemonConfig.env($0) }
        // Room for every connection and held descriptor, and the reserve for everything else.
        let fdLimit = lw_raise_fd_limit(wanted.connections + wanted.heldDescriptors + 2 * ControlLimits.reservedDescriptors)
        limits = fdLimit > 0 ? wanted.fitting(descriptorLimit: Int(fdLimit)) : wanted
        ledger = ControlLedger(limits: limits)
        if limits != wanted {
            log("control socket: the descriptor limit is \(fdLimit): at most \(limits.connections) connections "
                + "(\(limits.connectionsPerUID) per uid) and \(limits.heldDescriptors) held descriptors")
        }
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
        reserveFD = lw_open_reserve_fd()
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
            if reserveFD >= 0 { close(reserveFD) }
            running.store(false, ordering: .releasing)
        }
        onListening()
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        var readyFDs = [Int32](repeating: -1, count: 64)
        var readyEvents = [UInt32](repeating: 0, count: 64)
        let (evIn, evOut) = (UInt32(LW_EV_IN), UInt32(LW_EV_OUT))
        let (evHup, evErr) = (UInt32(LW_EV_HUP), UInt32(LW_EV_ERR))
        while !stopRequested.load(ordering: .acquiring) {
            let untilSweep = (nextSweep - ContinuousClock.now) / .milliseconds(1)
            let n = lw_epoll_wait(ep, &readyFDs, &readyEvents, 64, Int32(max(0, min(1000, untilSweep.rounded(.up)))))
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
            let now = ContinuousClock.now
            if now >= nextSweep { sweep(now) }
        }
    }

    // MARK: Connections and limits

    private func acceptAll() {
        while true {
            let fd = lw_unix_accept(listenFD)
            if fd < 0 {
                switch -fd {
                case EAGAIN, EWOULDBLOCK: return
                // The client gave up before we took it: nothing to do for it.
                case ECONNABORTED, EPROTO, EINTR: continue
                case EMFILE, ENFILE: return acceptAtDescriptorLimit(errno: -fd)
                default:
                    // ENOMEM, ENOBUFS: the kernel is short; try again at the next sweep.
                    return pauseListener(why: "accept: \(errnoDescription(-fd))")
                }
            }
            _ = lw_set_nonblocking(fd, 1)
            var pid: Int32 = 0, uid: UInt32 = 0, gid: UInt32 = 0
            if lw_peer_credentials(fd, &pid, &uid, &gid) != 0 {
                close(fd)
                continue
            }
            if let refusal = ledger.admit(uid: uid) {
                count("refused pid \(pid): \(refusal.message)")
                refuse(fd, refusal)
                continue
            }
            if lw_epoll_watch(ep, fd, UInt32(LW_EV_IN), 1) != 0 {
                ledger.close(uid: uid, charge: ControlLedger.Charge())
                close(fd)
                continue
            }
            nextID += 1
            connections[fd] = Connection(id: nextID, fd: fd, uid: uid, pid: pid, acceptedAt: .now)
        }
    }

    /// accept() found no descriptor free: take the waiting client with the reserve descriptor,
    /// tell it so, and stop watching the listener until the next sweep, so that the loop does
    /// not spin on a listener that stays readable.
    private func acceptAtDescriptorLimit(errno err: Int32) {
        if reserveFD >= 0 {
            close(reserveFD)
            let fd = lw_unix_accept(listenFD)
            if fd >= 0 {
                _ = lw_set_nonblocking(fd, 1)
                refuse(fd, ProtocolError(
                    .busy, "lapwingd is out of file descriptors (\(errnoDescription(err)))",
                    detail: "\(connections.count) connections open; retry later"))
            }
            reserveFD = lw_open_reserve_fd()
        }
        pauseListener(why: "accept: \(errnoDescription(err)) with \(connections.count) connections open")
    }

    private func pauseListener(why: String) {
        guard !listenerPaused else { return }
        listenerPaused = true
        _ = lw_epoll_watch(ep, listenFD, 0, 0)
        log("control socket: not accepting connections until the next sweep: \(why)")
    }

    /// Sends `error` on a connection that is not (or no longer) served, once, without waiting, and closes it.
    private func refuse(_ fd: Int32, _ error: ProtocolError) {
        if let frame = try? ServerMessage.error(error).frame() {
            _ = frame.withUnsafeBytes { lw_send_with_fds(fd, $0.baseAddress, $0.count, nil, 0) }
        }
        close(fd)
    }

    /// Closes `c` for going past a limit: the error goes out if nothing else is queued before it.
    private func expel(_ c: Connection, _ error: ProtocolError) {
        guard connections[c.fd] === c else { return }
        count("closed pid \(c.pid): \(error.message)")
        if c.outbox.isEmpty, let frame = try? ServerMessage.error(error).frame() {
            _ = frame.withUnsafeBytes { lw_send_with_fds(c.fd, $0.baseAddress, $0.count, nil, 0) }
        }
        drop(c, why: nil)
    }

    /// Notes a refusal or a closing for the sweep's log line (a flood would otherwise flood the log).
    private func count(_ event: String) {
        // One entry per kind: the numbers in a message (pids, counts, bytes) vary, so key on the rest.
        let kind = event.filter { !$0.isNumber }
        limitEvents[kind, default: (0, event)].count += 1
    }

    /// Updates what `c` counts against the budgets; closes it when one is overdrawn. Returns
    /// whether it is still open.
    @discardableResult
    private func recharge(_ c: Connection) -> Bool {
        let new = ledger.charge(bufferedBytes: c.decoder.bufferedByteCount + c.outboxBytes,
                                descriptors: c.decoder.pendingDescriptorCount + c.outboxDescriptors)
        let old = c.charge
        c.charge = new
        if let overdrawn = ledger.recharge(uid: c.uid, from: old, to: new) {
            expel(c, overdrawn)
            return false
        }
        return true
    }

    /// Once a second (more often for deadlines under two seconds): closes connections past a
    /// deadline, watches the listener again, logs what the limits did, and hands memory that
    /// closed connections let go back to the kernel.
    private func sweep(_ now: ContinuousClock.Instant) {
        nextSweep = now + limits.sweepInterval
        for c in Array(connections.values) {
            if !c.greeted && now - c.acceptedAt >= limits.helloTimeout {
                expel(c, ProtocolError(
                    .badFrame, "no hello within \(limits.helloTimeout) of connecting",
                    detail: "the first frame must be a hello; the connection closes"))
            } else if let started = c.frameStartedAt, now - started >= limits.frameTimeout {
                expel(c, ProtocolError(
                    .badFrame, "a frame unfinished \(limits.frameTimeout) after its first byte "
                        + "(\(c.decoder.bufferedByteCount) bytes received)",
                    detail: "a frame must arrive within \(limits.frameTimeout); the connection closes"))
            }
        }
        if listenerPaused {
            listenerPaused = false
            if reserveFD < 0 { reserveFD = lw_open_reserve_fd() }
            _ = lw_epoll_watch(ep, listenFD, UInt32(LW_EV_IN), 0)
        }
        if !limitEvents.isEmpty {
            let summary = limitEvents.sorted { $0.key < $1.key }.map { "\($0.value.count) × \($0.value.example)" }
            log("control socket: connections past a limit since the last sweep: " + summary.joined(separator: "; "))
            limitEvents = [:]
        }
        if releasedBytes >= 1 << 20 {
            _ = lw_release_free_memory()
            releasedBytes = 0
        }
    }

    private func readFrom(_ c: Connection, _ buf: inout [UInt8]) {
        var received = [Int32](repeating: -1, count: Int(LW_MAX_FDS_PER_FRAME))
        for _ in 0..<Self.readsPerWake {
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
            let fds = (0..<Int(nfds)).map { OwnedFD(received[$0]) }
            if truncated != 0 {
                // More than a frame may carry in one message: the kernel has closed the excess.
                fds.forEach { $0.close() }
                send(c, .error(ProtocolError(
                    .invalidArgument, "more than \(LW_MAX_FDS_PER_FRAME) descriptors attached to one message",
                    detail: "a frame carries at most \(LW_MAX_FDS_PER_FRAME); the connection closes")))
                return closeWhenFlushed(c)
            }
            let before = c.decoder.bufferedByteCount
            c.decoder.feed(buf[0..<n], fds: fds)
            var completed = false
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
                completed = true
                if frame.json.count >= FrameDecoder.keptCapacity { releasedBytes += frame.json.count }
                handle(c, frame)
                if connections[c.fd] !== c || c.closeAfterFlush { return }
            }
            // The deadline of a frame runs from its first byte.
            if c.decoder.bufferedByteCount == 0 {
                c.frameStartedAt = nil
            } else if completed || before == 0 || c.frameStartedAt == nil {
                c.frameStartedAt = .now
            }
            if !recharge(c) { return }
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
        guard connections[c.fd] === c else {
            fds.forEach { $0.close() }
            return
        }
        c.outbox.append((bytes, fds))
        c.outboxBytes += bytes.count
        c.outboxDescriptors += fds.count
        if c.outboxBytes > limits.outboxBytes || c.outboxDescriptors > limits.outboxDescriptors {
            return drop(
                c, why: "it stopped reading its replies (\(c.outboxBytes) bytes and \(c.outboxDescriptors) descriptors queued)")
        }
        flush(c)
        if connections[c.fd] === c { recharge(c) }
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
            if c.sentOfFirst == 0 {
                first.fds.forEach { $0.close() }
                c.outboxDescriptors -= first.fds.count
            }
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
        if c.charge != ControlLedger.Charge() { recharge(c) }
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
        guard connections[c.fd] === c else { return }
        if let why { log("control socket: dropping connection of pid \(c.pid) (uid \(c.uid)): \(why)") }
        for w in c.watching { manager.unwatch(w.job, w.token) }
        for item in c.outbox { item.fds.forEach { $0.close() } }
        c.outbox = []
        // Descriptors of an unfinished frame close now, and its buffer goes.
        releasedBytes += c.decoder.bufferedByteCount + c.outboxBytes
        c.decoder = FrameDecoder()
        c.outboxBytes = 0
        c.outboxDescriptors = 0
        ledger.close(uid: c.uid, charge: c.charge)
        c.charge = ControlLedger.Charge()
        connections[c.fd] = nil
        _ = lw_epoll_forget(ep, c.fd)
        close(c.fd)
    }
}
