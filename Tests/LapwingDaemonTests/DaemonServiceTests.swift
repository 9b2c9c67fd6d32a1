import Foundation
import LapwingDaemon
import LapwingJob
import LapwingProtocol
import LapwingTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension DaemonTests {
    /// systemd integration on real sockets: the notify datagrams and socket activation.
    @Suite struct ServiceManagerIntegration {
        @Test func notifySocketSeesReadyStatusWatchdogStoppingInOrder() throws {
            let d = try DaemonHarness(tag: "notify")
            defer { d.cleanUp() }
            let path = d.dir + "/notify.sock"
            let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            #expect(fd >= 0)
            defer { close(fd) }
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in path.utf8.enumerated() { p[i] = b } }
            let bound = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            #expect(bound == 0)
            try d.start(extraEnvironment: ["NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"])
            var messages: [String] = []
            func receive(for seconds: Double) {
                let end = Date().addingTimeInterval(seconds)
                var buf = [UInt8](repeating: 0, count: 4096)
                while Date() < end {
                    var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                    guard poll(&p, 1, 50) > 0 else { continue }
                    let n = recv(fd, &buf, buf.count, 0)
                    if n > 0 { messages.append(String(decoding: buf[0..<n], as: UTF8.self)) }
                }
            }
            receive(for: 1.5)
            d.stop()
            receive(for: 0.3)
            let ready = messages.firstIndex { $0.contains("READY=1") }
            let status = messages.firstIndex { $0.contains("STATUS=") }
            let watchdog = messages.firstIndex { $0.contains("WATCHDOG=1") }
            let stopping = messages.firstIndex { $0.contains("STOPPING=1") }
            #expect(ready != nil && status != nil && watchdog != nil && stopping != nil, "got \(messages)")
            if let ready, let status, let watchdog, let stopping {
                #expect(ready <= status && status < watchdog && watchdog < stopping, "order: \(messages)")
                #expect(messages[status].contains("0 running, 0 queued"))
            }
        }

        @Test func socketActivationHandsTheDaemonItsListeningSocket() throws {
            let d = try DaemonHarness(tag: "activate")
            defer { d.cleanUp() }
            let sock = d.dir + "/activated.sock"
            let activator = try SpawnedProcess(
                "/usr/bin/env",
                ["XDG_RUNTIME_DIR=\(d.runtime)", "XDG_STATE_HOME=\(d.stateHome)", "systemd-socket-activate", "-l", sock,
                 try TestSupport.binary("lapwingd"), "--user"],
                outputIn: d.dir)
            defer {
                activator.signalGroup(SIGTERM)
                activator.wait(timeout: 30)
            }
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline && !FileManager.default.fileExists(atPath: sock) { usleep(20_000) }
            let r = try d.cli(["version"], socketOverride: sock)
            #expect(r.status == 0, "version through the activated socket: \(r.stderr) / \(activator.stderr)")
            #expect(r.stdout.contains("lapwingd"))
            let list = try d.cli(["list", "--json"], socketOverride: sock)
            #expect(list.status == 0 && list.stdout.hasPrefix("["), "list: \(list.stderr)")
        }
    }

    /// Clients that misbehave pay alone: the daemon keeps serving everyone else.
    @Suite struct Robustness {
        func hello(_ path: String) throws -> UnixConnection {
            let c = try UnixConnection.connect(path: path)
            try c.send(.hello(ClientHello()))
            _ = try c.receiveFrame(timeout: .seconds(10))
            return c
        }

        func reply(_ c: UnixConnection) throws -> ServerMessage? {
            guard let f = try c.receiveFrame(timeout: .seconds(10)) else { return nil }
            return try ServerMessage.decode(f.json)
        }

        @Test func twoHundredConcurrentClientsAreAllAnsweredDuringAJob() throws {
            let d = try DaemonHarness(tag: "load")
            defer { d.cleanUp() }
            try d.start()
            let id = try d.submit(["--model", "mlp:784-256-10", "--workers", "2", "--replicas", "2", "--epochs", "500"]).id
            // 200 connections at once, each asking status and list five times a second for 3 s.
            let load = try runProgram(
                TestSupport.binary("lapwing-bench"),
                ["control-load", "--socket", d.socket, "--job", id, "--clients", "200", "--interval", "0.2", "--seconds", "3"])
            #expect(load.status == 0, "control-load: \(load.stderr)")
            let report = try JSONSerialization.jsonObject(with: Data(load.stdout.utf8)) as? [String: Any]
            #expect(report?["connected"] as? Int == 200)
            #expect(report?["errors"] as? Int == 0, "\(load.stdout)")
            #expect((report?["requests"] as? Int ?? 0) >= 1000, "\(load.stdout)")
            let status = try decode(JobRecord.self, d.cli(["status", id, "--json"]).stdout)
            #expect(status.state == .running, "the job kept running: \(status.state)")
            _ = try d.cli(["cancel", id])
            _ = try d.cli(["watch", id])
        }

        @Test func malformedOversizeHalfClosedAndNonReadingClientsDoNotStopTheDaemon() throws {
            let d = try DaemonHarness(tag: "robust")
            defer { d.cleanUp() }
            try d.start()

            // Malformed JSON: a structured error, and the connection still works.
            let bad = try hello(d.socket)
            try bad.send(frame: Array("{\"type\":\"request\",".utf8).count.bigEndianFrame(Array("{\"type\":\"request\",".utf8)))
            guard case .error(let e)? = try reply(bad) else { Issue.record("no error for malformed JSON"); return }
            #expect(e.code == .badFrame)
            try bad.send(.request(Request(id: 7, verb: .list)))
            guard case .response(let ok)? = try reply(bad) else { Issue.record("no answer after an error"); return }
            #expect(ok.id == 7)

            // Unknown verb and unknown field: errors that name them.
            try bad.send(frame: Frame.encode(json: Array(#"{"type":"request","id":8,"verb":"explode","args":{}}"#.utf8)))
            guard case .response(let unknown)? = try reply(bad), case .failure(let ue) = unknown.outcome else {
                Issue.record("no error for an unknown verb"); return
            }
            #expect(ue.code == .unknownVerb && ue.message.contains("explode"))
            try bad.send(frame: Frame.encode(json: Array(#"{"type":"request","id":9,"verb":"status","args":{"jobb":"x"}}"#.utf8)))
            guard case .response(let field)? = try reply(bad), case .failure(let fe) = field.outcome else {
                Issue.record("no error for an unknown field"); return
            }
            #expect(fe.code == .unknownField && fe.message.contains("jobb"))

            // An oversize length prefix: an error, then that connection (only) is closed.
            let big = try hello(d.socket)
            try big.send(frame: [0x7f, 0xff, 0xff, 0xff, 0x7b])
            guard case .error(let be)? = try reply(big) else { Issue.record("no error for an oversize frame"); return }
            #expect(be.code == .frameTooLarge)
            #expect(try big.receiveFrame(timeout: .seconds(10)) == nil)

            // A wrong protocol version.
            let old = try UnixConnection.connect(path: d.socket)
            try old.send(frame: Frame.encode(json: Array(#"{"type":"hello","version":99,"client":"x"}"#.utf8)))
            guard case .error(let ve)? = try reply(old) else { Issue.record("no error for version 99"); return }
            #expect(ve.code == .unsupportedVersion)

            // Half-closed: the request was sent, then the write side shut; the answer still arrives.
            let half = try hello(d.socket)
            try half.send(.request(Request(id: 1, verb: .version)))
            try half.shutdownWrite()
            guard case .response(let hr)? = try reply(half) else { Issue.record("no answer to a half-closed client"); return }
            #expect(hr.id == 1)

            // A client that sends many requests and never reads its answers.
            let greedy = try hello(d.socket)
            for i in 0..<3000 { try greedy.send(.request(Request(id: i, verb: .list))) }

            // Everyone else is still served.
            let r = try d.cli(["list", "--json"])
            #expect(r.status == 0, "list after the misbehaving clients: \(r.stderr)")
            #expect(d.daemon?.wait(timeout: 0) == nil, "the daemon died")
            _ = greedy
        }
    }
}

extension Int {
    /// A frame whose length prefix is this value, around `body`.
    func bigEndianFrame(_ body: [UInt8]) -> [UInt8] {
        let n = UInt32(self)
        return [UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)] + body
    }
}
