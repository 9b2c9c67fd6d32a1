import Foundation
import LapwingCore
import LapwingProtocol
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct SocketTests {
    @Test func framesCrossASocketPair() throws {
        let (a, b) = try UnixConnection.pair()
        let request = ClientMessage.request(Request(id: 1, verb: .status, args: ["job": "j1"]))
        // Two frames in one write arrive as two frames.
        try a.send(frame: try request.frame() + (try ClientMessage.request(Request(id: 2, verb: .list)).frame()))
        let first = try #require(try b.receiveFrame(timeout: .seconds(5)))
        let second = try #require(try b.receiveFrame(timeout: .seconds(5)))
        #expect(try ClientMessage.decode(first.json) == request)
        #expect(try ClientMessage.decode(second.json) == .request(Request(id: 2, verb: .list)))
        try a.shutdownWrite()
        #expect(try b.receiveFrame(timeout: .seconds(5)) == nil)
    }

    @Test func aLargeFrameCrossesANonBlockingPair() throws {
        let (a, b) = try UnixConnection.pair()
        try a.setNonBlocking()
        try b.setNonBlocking()
        let big = JSONValue.string(String(repeating: "x", count: 900_000))
        let message = ServerMessage.response(Response(id: 1, result: ["blob": big]))
        nonisolated(unsafe) let sendingEnd = a
        let sender = Thread { try? sendingEnd.send(message) }
        sender.start()
        let frame = try #require(try b.receiveFrame(timeout: .seconds(10)))
        #expect(try ServerMessage.decode(frame.json) == message)
    }

    @Test func receiveTimesOut() throws {
        let (a, b) = try UnixConnection.pair()
        defer { a.close() }
        do {
            _ = try b.receiveFrame(timeout: .milliseconds(50))
            Issue.record("expected a timeout")
        } catch let error as LapwingError {
            #expect(error.errno == ETIMEDOUT)
        }
    }

    @Test func streamErrorsOverASocket() throws {
        let (a, b) = try UnixConnection.pair()
        writeRaw(a, [0x00, 0x10, 0x00, 0x01])
        expectProtocolError(.frameTooLarge) { _ = try b.receiveFrame(timeout: .seconds(5)) }
        let (c, d) = try UnixConnection.pair()
        writeRaw(c, [0, 0, 0, 9, 0x7b])
        c.close()
        let error = expectProtocolError(.badFrame) { _ = try d.receiveFrame(timeout: .seconds(5)) }
        #expect(error?.message.contains("ended inside a frame") == true)
    }

    @Test func descriptorsTravelWithTheirFrame() throws {
        let dir = try ScratchDirectory("fds")
        defer { dir.remove() }
        try "alpha contents".write(toFile: dir.path + "/train.svm", atomically: false, encoding: .utf8)
        try "beta".write(toFile: dir.path + "/test.svm", atomically: false, encoding: .utf8)
        let f1 = open(dir.path + "/train.svm", O_RDONLY | O_CLOEXEC)
        let f2 = open(dir.path + "/test.svm", O_RDONLY | O_CLOEXEC)
        #expect(f1 >= 0 && f2 >= 0)
        defer {
            close(f1)
            close(f2)
        }
        let args = SubmitArgs(
            spec: ["model": "logreg"], files: [FileRole(role: "train", name: "train.svm"), FileRole(role: "test", name: "test.svm")])
        let (client, server) = try UnixConnection.pair()
        // A frame without descriptors before and after the one with them.
        try client.send(.request(Request(id: 1, verb: .list)))
        try client.send(.request(try Request(id: 2, verb: .submit, encoding: args)), fds: [f1, f2])
        try client.send(.request(Request(id: 3, verb: .version)))

        let first = try #require(try server.receiveFrame(timeout: .seconds(5)))
        #expect(first.fds.isEmpty)
        let frame = try #require(try server.receiveFrame(timeout: .seconds(5)))
        #expect(frame.fds.count == 2)
        let third = try #require(try server.receiveFrame(timeout: .seconds(5)))
        #expect(third.fds.isEmpty)

        guard case .request(let request) = try ClientMessage.decode(frame.json),
            case .submit(let decoded, let files) = try Call.decode(request, fds: frame.fds)
        else {
            Issue.record("not a submit")
            return
        }
        #expect(decoded == args)
        var contents: [String] = []
        for file in files {
            #expect(file.rawValue != f1 && file.rawValue != f2, "the receiver gets its own descriptors")
            #expect(fcntl(file.rawValue, F_GETFD) & FD_CLOEXEC != 0, "received close-on-exec")
            var buffer = [UInt8](repeating: 0, count: 64)
            let n = pread(file.rawValue, &buffer, buffer.count, 0)
            contents.append(String(decoding: buffer[0..<max(n, 0)], as: UTF8.self))
        }
        #expect(contents == ["alpha contents", "beta"])
        files.forEach { $0.close() }
        #expect(files.allSatisfy { $0.rawValue == -1 })
    }

    @Test func peerCredentialsAreThisProcess() throws {
        let (a, b) = try UnixConnection.pair()
        let cred = try b.peerCredentials()
        #expect(cred == PeerCredentials(pid: getpid(), uid: getuid(), gid: getgid()))
        #expect(try a.peerCredentials().pid == getpid())
    }

    @Test func listenerRefusesALiveSocketAndRemovesAStaleOne() throws {
        let dir = try ScratchDirectory("listen")
        defer { dir.remove() }
        let path = dir.path + "/control.sock"
        let live = try UnixListener.bind(path: path)
        var st = stat()
        #expect(stat(path, &st) == 0 && st.st_mode & 0o777 == 0o660)
        do {
            _ = try UnixListener.bind(path: path)
            Issue.record("bound over a live socket")
        } catch {
            #expect(error.code == .busy)
        }
        // The live one still works.
        let client = try UnixConnection.connect(path: path)
        // Two connections wait: the refused bind's probe (already closed) and the client.
        var accepted: [UnixConnection] = []
        for _ in 0..<200 where accepted.count < 2 {
            if let c = try live.accept() { accepted.append(c) } else { usleep(10_000) }
        }
        #expect(accepted.count == 2)
        #expect(try accepted.last?.peerCredentials().pid == getpid())
        #expect(try accepted.first?.receiveFrame(timeout: .seconds(5)) == nil, "the probe closed at once")
        #expect(try live.accept() == nil)
        _ = client

        // A stale socket: bound, never listened on (as after a crash), so connecting is refused.
        let stalePath = dir.path + "/stale.sock"
        let stale = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            for (i, c) in stalePath.utf8.enumerated() { p[i] = c }
        }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(stale, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(r == 0)
        close(stale)
        let fresh = try UnixListener.bind(path: stalePath, mode: 0o600)
        #expect(stat(stalePath, &st) == 0 && st.st_mode & 0o777 == 0o600)
        fresh.close()
        #expect(access(stalePath, F_OK) != 0, "close removes the socket file it created")

        // A regular file is never removed.
        let filePath = dir.path + "/not-a-socket"
        #expect(FileManager.default.createFile(atPath: filePath, contents: Data("x".utf8)))
        #expect(throws: LapwingError.self) { _ = try UnixListener.bind(path: filePath) }
        #expect(access(filePath, F_OK) == 0)
    }

    @Test func adoptingAListeningSocket() throws {
        let dir = try ScratchDirectory("adopt")
        defer { dir.remove() }
        let bound = try UnixListener.bind(path: dir.path + "/a.sock")
        let copy = dup(bound.fd)
        let adopted = try UnixListener(adoptingFD: copy)
        let client = try UnixConnection.connect(path: dir.path + "/a.sock")
        var got: UnixConnection? = nil
        for _ in 0..<100 where got == nil {
            got = try adopted.accept()
            if got == nil { usleep(10_000) }
        }
        #expect(got != nil)
        _ = client
        let (a, _) = try UnixConnection.pair()
        #expect(throws: LapwingError.self) { _ = try UnixListener(adoptingFD: dup(a.fd)) }
    }

    @Test func controlClientAgainstAServerThread() throws {
        let dir = try ScratchDirectory("client")
        defer { dir.remove() }
        let path = dir.path + "/control.sock"
        let ready = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        let server = Thread {
            runTestServer(path: path, ready: ready)
            done.signal()
        }
        server.start()
        ready.wait()

        let client = try ControlClient(path: path, timeout: .seconds(10))
        #expect(client.server.uid == getuid())
        #expect(client.server.server == "lapwingd-test 0.1.0")
        let version = try client.call(.version)
        #expect(version == ["server": "lapwingd-test", "protocol": 1])

        var events: [JSONValue] = []
        let final = try client.stream(.watch, args: JobRef(job: "j1")) { events.append($0) }
        #expect(events == [["step": 1], ["step": 2], ["step": 3]])
        #expect(final == ["state": "finished"])

        let error = expectProtocolError(.notFound) { try client.call(.status, args: JobRef(job: "missing")) }
        #expect(error?.message == "job missing: no such job")
        #expect(error?.requestID == 3)

        // Strictness reaches the client as the server's error, naming the field.
        let strict = expectProtocolError(.unknownField) { try client.call(.status, args: ["jobb": "j1"] as JSONValue) }
        #expect(strict?.message.contains("\"jobb\"") == true)

        // Descriptors on a verb that takes none: refused, and the connection goes on.
        let fd = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(fd) }
        expectProtocolError(.invalidArgument) { try client.call(.list, fds: [fd]) }
        #expect(try client.call(.version)["protocol"] == 1)

        client.connection.close()
        #expect(done.wait(timeout: .now() + 10) == .success, "the server saw the client leave")
    }

    @Test func wrongVersionGetsUnsupportedVersionAndAClose() throws {
        let dir = try ScratchDirectory("version")
        defer { dir.remove() }
        let path = dir.path + "/control.sock"
        let ready = DispatchSemaphore(value: 0)
        let server = Thread { runTestServer(path: path, ready: ready) }
        server.start()
        ready.wait()
        let c = try UnixConnection.connect(path: path)
        try c.send(frame: try Frame.encode(json: json(#"{"type":"hello","version":2,"client":"lapwing 2.0"}"#)))
        let frame = try #require(try c.receiveFrame(timeout: .seconds(10)))
        guard case .error(let error) = try ServerMessage.decode(frame.json) else {
            Issue.record("expected an error frame")
            return
        }
        #expect(error.code == .unsupportedVersion)
        #expect(error.detail == "this server speaks version 1")
        #expect(try c.receiveFrame(timeout: .seconds(10)) == nil, "the server closes after refusing")
    }
}

/// A tiny server: one connection, a handshake, then version, watch (three events), status
/// (not_found for "missing"); everything else answers {} after strict decoding.
private func runTestServer(path: String, ready: DispatchSemaphore) {
    guard let listener = try? UnixListener.bind(path: path) else {
        ready.signal()
        return
    }
    ready.signal()
    var p = pollfd(fd: listener.fd, events: Int16(POLLIN), revents: 0)
    guard poll(&p, 1, 10_000) == 1, let connection = try? listener.accept() else { return }
    do {
        guard let hello = try connection.receiveFrame(timeout: .seconds(10)) else { return }
        let (reply, accepted) = Handshake.answer(
            hello, server: "lapwingd-test 0.1.0", peerUID: try connection.peerCredentials().uid)
        try connection.send(reply)
        guard accepted else { return }
        while let frame = try connection.receiveFrame(timeout: .seconds(10)) {
            do {
                guard case .request(let request) = try ClientMessage.decode(frame.json) else {
                    try connection.send(.error(ProtocolError(.badFrame, "a second hello")))
                    continue
                }
                let id = request.id
                switch try Call.decode(request, fds: frame.fds) {
                case .version:
                    try connection.send(.response(Response(id: id, result: ["server": "lapwingd-test", "protocol": 1])))
                case .watch:
                    for step in 1...3 { try connection.send(.event(Event(id: id, event: ["step": .number(Double(step))]))) }
                    try connection.send(.response(Response(id: id, result: ["state": "finished"])))
                case .status(let ref) where ref.job == "missing":
                    try connection.send(.response(Response(id: id, error: ProtocolError(.notFound, "job missing: no such job"))))
                default:
                    try connection.send(.response(Response(id: id, result: [:])))
                }
            } catch let error as ProtocolError {
                if let id = error.requestID {
                    try connection.send(.response(Response(id: id, error: error)))
                } else {
                    try connection.send(.error(error))
                }
            }
        }
    } catch {
        return
    }
}
