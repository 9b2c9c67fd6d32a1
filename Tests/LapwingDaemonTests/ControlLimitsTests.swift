import Foundation
import LapwingCore
@testable import LapwingDaemon
import LapwingProtocol
import LapwingTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The open descriptors of a process (/proc/PID/fd).
func openDescriptors(_ pid: pid_t) -> Int {
    ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).count
}

/// The resident memory of a process in bytes (/proc/PID/status VmRSS).
func residentBytes(_ pid: pid_t) -> Int {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
    }
    return 0
}

/// Polls `condition` until it holds or `timeout` seconds pass; returns whether it held.
func eventually(timeout: Double, every interval: Double = 0.02, _ condition: () throws -> Bool) rethrows -> Bool {
    let end = Date().addingTimeInterval(timeout)
    while true {
        if try condition() { return true }
        if Date() >= end { return false }
        usleep(useconds_t(interval * 1e6))
    }
}

/// A connection that has said hello.
func greeted(_ socket: String) throws -> UnixConnection {
    let c = try UnixConnection.connect(path: socket)
    try c.send(.hello(ClientHello()))
    guard let f = try c.receiveFrame(timeout: .seconds(30)), case .hello = try ServerMessage.decode(f.json) else {
        throw TestFailure("no hello from the daemon")
    }
    return c
}

/// What the daemon sends before it closes a connection: its error, or nil when it closed without
/// one (or reset the connection). Throws if the connection is still open after `timeout` seconds.
func closingError(_ c: UnixConnection, timeout: Double = 30) throws -> ProtocolError? {
    let end = Date().addingTimeInterval(timeout)
    var error: ProtocolError?
    while Date() < end {
        do {
            guard let f = try c.receiveFrame(timeout: .seconds(max(0.1, end.timeIntervalSinceNow))) else { return error }
            if case .error(let e) = try ServerMessage.decode(f.json) { error = e }
        } catch let e as LapwingError where e.errno == ETIMEDOUT {
            break
        } catch let e as ProtocolError where e.message.contains("ended inside a frame") {
            return error
        } catch is LapwingError {
            return error  // ECONNRESET: the daemon closed with our bytes unread
        }
    }
    throw TestFailure("the daemon did not close the connection within \(timeout) s")
}

/// Sends `bytes` with `fds` attached; false once the daemon has closed the connection.
func trySend(_ c: UnixConnection, _ bytes: [UInt8], fds: [Int32] = []) -> Bool {
    do {
        try c.send(frame: bytes, fds: fds)
        return true
    } catch {
        return false
    }
}

/// A daemon's answer to `version` on a fresh connection (the proof that it still serves).
func answersVersion(_ socket: String) -> Bool {
    guard let client = try? ControlClient(path: socket, timeout: .seconds(30)),
        let v = try? client.call(.version)
    else { return false }
    return v["protocolVersion"] != nil
}

extension DaemonTests {
    @Suite struct ControlLimitsTests {
        /// Issue 8 point 3: one client began a 1 MiB frame and sent 1 byte and 16 descriptors at a
        /// time, and the daemon held them all (20,000). Now a frame's descriptors are counted over
        /// all its messages: the 17th closes the connection and the descriptors with it.
        /// Bound: however many floods, the daemon's descriptors stay within 64 of its baseline.
        @Test func aDescriptorFloodLeavesTheDaemonsDescriptorsBounded() throws {
            let d = try DaemonHarness(tag: "fdflood")
            defer { d.cleanUp() }
            try d.start()
            let pid = try #require(d.daemon?.pid)
            #expect(answersVersion(d.socket))
            let baseline = openDescriptors(pid)
            let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
            defer { close(null) }
            var floods: [UnixConnection] = []
            var refusedAfter: [Int] = []
            for _ in 0..<8 {
                let c = try greeted(d.socket)
                floods.append(c)
                _ = trySend(c, [0x00, 0x10, 0x00, 0x00])
                var messages = 0
                while messages < 100 && trySend(c, [0x20], fds: [Int32](repeating: null, count: 16)) { messages += 1 }
                refusedAfter.append(messages)
                let error = try closingError(c)
                if let error {
                    #expect(error.code == .invalidArgument && error.message.contains("descriptors attached to one frame"), "\(error)")
                }
            }
            // The test still holds every flood connection open: the daemon has closed its ends.
            let peak = openDescriptors(pid)
            #expect(peak <= baseline + 64, "descriptors: \(baseline) before, \(peak) after 8 floods (sends accepted: \(refusedAfter))")
            #expect(answersVersion(d.socket), "another client is served")
            #expect(eventually(timeout: 30) { openDescriptors(pid) <= baseline + 2 }, "descriptors back near \(baseline): \(openDescriptors(pid))")
            print("descriptor flood: daemon fds \(baseline) before, \(peak) after 8 floods of up to 100 × 16")
            _ = floods
        }

        /// Issue 8 point 4: 2,500 connections each holding an unfinished 1 MiB frame took the
        /// daemon to 2.5 GB. Now one uid's connections may buffer 64 KiB each plus 16 MiB in all
        /// (32 MiB at 256 connections), and connections past 256 per uid are refused with `busy`.
        /// Bounds checked: RSS within 64 MiB of the baseline and descriptors within 256 + 64,
        /// with 300 connections each trying to send all but the last 4 bytes of a 1 MiB frame.
        @Test func aPartialFrameFloodLeavesMemoryAndDescriptorsBounded() throws {
            let d = try DaemonHarness(tag: "partial")
            defer { d.cleanUp() }
            try d.start()
            let pid = try #require(d.daemon?.pid)
            #expect(answersVersion(d.socket))
            let (rss0, fds0) = (residentBytes(pid), openDescriptors(pid))
            var chunk = [UInt8](repeating: 0x20, count: 1 << 20)
            chunk[0...3] = [0x00, 0x10, 0x00, 0x00]  // a 1 MiB frame; all but its last 4 bytes are sent
            var held: [UnixConnection] = []
            var (cutShort, busy) = (0, 0)
            for _ in 0..<300 {
                let c = try UnixConnection.connect(path: d.socket)
                held.append(c)
                if !trySend(c, chunk) {
                    cutShort += 1
                    if let e = try? closingError(c, timeout: 5), e.code == .busy { busy += 1 }
                }
            }
            let (rss1, fds1) = (residentBytes(pid), openDescriptors(pid))
            print("partial-frame flood: daemon RSS \(rss0 >> 20) MiB → \(rss1 >> 20) MiB, fds \(fds0) → \(fds1); "
                + "\(cutShort) of 300 connections cut short, \(busy) told busy")
            #expect(rss1 <= rss0 + 64 << 20, "RSS \(rss0) → \(rss1)")
            #expect(fds1 <= fds0 + 256 + 64, "descriptors \(fds0) → \(fds1)")
            #expect(cutShort >= 300 - 256, "connections past the caps are cut short: \(cutShort)")
            #expect(busy >= 1, "the refused ones are told busy")
            #expect(answersVersion(d.socket), "a new client still gets answers")
            held.forEach { $0.close() }
            #expect(eventually(timeout: 30) { openDescriptors(pid) <= fds0 + 2 }, "descriptors back near \(fds0)")
        }

        @Test func silentConnectionsAndUnfinishedFramesAreClosedAtTheirDeadlines() throws {
            let d = try DaemonHarness(tag: "deadline")
            defer { d.cleanUp() }
            try d.start(extraEnvironment: ["LAPWING_CONTROL_HELLO_TIMEOUT_MS": "500", "LAPWING_CONTROL_FRAME_TIMEOUT_MS": "1500"])
            let silent = try UnixConnection.connect(path: d.socket)
            let idle = try greeted(d.socket)
            let slow = try greeted(d.socket)
            let request = try ClientMessage.request(Request(id: 1, verb: .version)).frame()
            try slow.send(frame: Array(request.prefix(10)))
            let started = Date()
            let hello = try #require(try closingError(silent), "an error before the close")
            #expect(hello.code == .badFrame && hello.message.contains("no hello within"), "\(hello)")
            let frame = try #require(try closingError(slow), "an error before the close")
            #expect(frame.code == .badFrame && frame.message.contains("unfinished"), "\(frame)")
            #expect(Date().timeIntervalSince(started) >= 1.0, "not before the frame's deadline")
            // A greeted connection between frames has no deadline: it is still served.
            try idle.send(.request(Request(id: 5, verb: .version)))
            let reply = try #require(try idle.receiveFrame(timeout: .seconds(30)))
            guard case .response(let r) = try ServerMessage.decode(reply.json) else { throw TestFailure("no response") }
            #expect(r.id == 5)
        }

        @Test func connectionsPastTheCapAreToldBusyAndOtherUsersAreServed() throws {
            let d = try DaemonHarness(tag: "caps")
            defer { d.cleanUp() }
            try d.start(extraEnvironment: ["LAPWING_CONTROL_MAX_CONNECTIONS_PER_UID": "4"])
            var open = try (0..<4).map { _ in try greeted(d.socket) }
            let extra = try UnixConnection.connect(path: d.socket)
            let refusal = try #require(try closingError(extra), "an error before the close")
            #expect(refusal.code == .busy, "\(refusal)")
            #expect(refusal.message.contains("uid \(getuid()) has 4 connections open"), "\(refusal)")
            #expect(refusal.detail?.contains("4 connections per uid") == true, "\(refusal)")
            // Another uid is not held back by this one's connections.
            let other = try d.cli(["list"], asNobody: true)
            #expect(other.status == 0, "another uid: \(other.stderr)")
            // Once one closes, this uid may connect again.
            open.removeLast().close()
            #expect(eventually(timeout: 30) { answersVersion(d.socket) })
            _ = open
        }

        @Test func aDuplicateKeyIsRefusedNamingItAndTheConnectionGoesOn() throws {
            let d = try DaemonHarness(tag: "dupkey")
            defer { d.cleanUp() }
            try d.start()
            let c = try greeted(d.socket)
            try c.send(frame: Frame.encode(json: Array(#"{"type":"request","id":1,"verb":"version","args":{},"id":2}"#.utf8)))
            let f = try #require(try c.receiveFrame(timeout: .seconds(30)))
            guard case .error(let e) = try ServerMessage.decode(f.json) else { throw TestFailure("not an error: \(f.json)") }
            #expect(e.code == .badFrame && e.detail == #"duplicate key "id" at character 52"#, "\(e)")
            try c.send(.request(Request(id: 3, verb: .version)))
            let next = try #require(try c.receiveFrame(timeout: .seconds(30)))
            guard case .response(let r) = try ServerMessage.decode(next.json) else { throw TestFailure("no response") }
            #expect(r.id == 3)
        }

        @Test func theLedgerChargesEachUIDAndGivesBackOnClose() throws {
            var limits = ControlLimits()
            limits.connectionsPerUID = 2
            limits.connections = 3
            var ledger = ControlLedger(limits: limits)
            #expect(ledger.admit(uid: 1) == nil)
            #expect(ledger.admit(uid: 1) == nil)
            #expect(ledger.admit(uid: 1)?.code == .busy)
            #expect(ledger.admit(uid: 2) == nil)
            #expect(ledger.admit(uid: 3)?.message == "lapwingd has 3 connections open, the most it takes")
            let big = ledger.charge(bufferedBytes: limits.freeBytesPerConnection + limits.bufferedBytesPerUID + 1, descriptors: 0)
            #expect(ledger.recharge(uid: 1, from: .init(), to: big)?.message.hasPrefix("uid 1 buffers") == true)
            ledger.close(uid: 1, charge: big)
            #expect(ledger.total.bytes == 0 && ledger.total.connections == 2)
            let fds = ledger.charge(bufferedBytes: 10, descriptors: limits.heldDescriptorsPerUID + 1)
            #expect(fds.bytes == 0)
            #expect(ledger.recharge(uid: 2, from: .init(), to: fds)?.message == "uid 2 has lapwingd hold 129 descriptors")
            #expect(try limits.overridden { $0 == "LAPWING_CONTROL_HELLO_TIMEOUT_MS" ? "250" : nil }.helloTimeout == .milliseconds(250))
            #expect(throws: LapwingError.self) { try limits.overridden { $0 == "LAPWING_CONTROL_MAX_CONNECTIONS" ? "0" : nil } }
            let small = ControlLimits().fitting(descriptorLimit: 1024)
            #expect(small.connections + small.heldDescriptors <= 1024 - 256 && small.connections >= 256)
        }
    }
}
