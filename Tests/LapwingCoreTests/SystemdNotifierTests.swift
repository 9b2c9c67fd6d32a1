import CLapwing
@testable import LapwingCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// sd_notify without libsystemd: the datagrams reach a real socket, path or abstract.
@Suite struct SystemdNotifierTests {
    /// A bound datagram socket; `name` is a path or "@abstract".
    final class Receiver {
        let fd: Int32
        init(_ name: String) throws {
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            var bytes = Array(name.utf8)
            let abstract = bytes.first == UInt8(ascii: "@")
            if abstract { bytes[0] = 0 }
            withUnsafeMutableBytes(of: &addr.sun_path) { p in for (i, b) in bytes.enumerated() { p[i] = b } }
            let len = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
            let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
            guard r == 0 else { throw LapwingError.system("bind", errno: errno, object: name) }
            var tv = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        }
        func receive() -> String {
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            return n > 0 ? String(decoding: buf[0..<n], as: UTF8.self) : ""
        }
        deinit { close(fd) }
    }

    @Test func datagramsReachAPathSocketInOrder() throws {
        let path = "/tmp/lapwing-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let rx = try Receiver(path)
        defer { unlink(path) }
        let n = SystemdNotifier(socketPath: path)
        try n.ready(status: "0 running, 0 queued")
        try n.watchdog()
        try n.stopping()
        #expect(rx.receive() == "READY=1\nSTATUS=0 running, 0 queued\n")
        #expect(rx.receive() == "WATCHDOG=1\n")
        #expect(rx.receive() == "STOPPING=1\n")
    }

    @Test func abstractNamesWork() throws {
        let name = "@lapwing-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let rx = try Receiver(name)
        try SystemdNotifier(socketPath: name).status("busy")
        #expect(rx.receive() == "STATUS=busy\n")
    }

    @Test func aMissingSocketAndAnOverlongNameAreNamedErrors() {
        do {
            try SystemdNotifier(socketPath: "/tmp/lapwing-no-such-notify-socket").watchdog()
            Issue.record("sent to a missing socket")
        } catch {
            #expect(error.message.contains("NOTIFY_SOCKET /tmp/lapwing-no-such-notify-socket"))
        }
        let long = "/tmp/" + String(repeating: "x", count: 200)
        #expect(throws: LapwingError.self) { try SystemdNotifier(socketPath: long).watchdog() }
    }
}

/// $WATCHDOG_USEC and $LISTEN_FDS apply only to the process they name.
@Suite struct SystemdEnvironmentTests {
    @Test func watchdogIntervalIsForThisProcessOnly() {
        #expect(SystemdNotifier.watchdogInterval(usec: "3000000", pid: nil, me: 10) == .seconds(3))
        #expect(SystemdNotifier.watchdogInterval(usec: "3000000", pid: "10", me: 10) == .seconds(3))
        #expect(SystemdNotifier.watchdogInterval(usec: "3000000", pid: "11", me: 10) == nil)
        #expect(SystemdNotifier.watchdogInterval(usec: "0", pid: nil, me: 10) == nil)
        #expect(SystemdNotifier.watchdogInterval(usec: "soon", pid: nil, me: 10) == nil)
    }

    @Test func listenFDsStartAtThreeAndNeedOurPID() {
        #expect(SystemdNotifier.listenFDs(count: "2", pid: "10", me: 10) == [3, 4])
        #expect(SystemdNotifier.listenFDs(count: "2", pid: "11", me: 10) == [])
        #expect(SystemdNotifier.listenFDs(count: "1", pid: nil, me: 10) == [])
        #expect(SystemdNotifier.listenFDs(count: "0", pid: "10", me: 10) == [])
    }

    /// FDSTORE=1 carries the descriptor itself (SCM_RIGHTS), and LISTEN_FDNAMES names come back.
    @Test func storingSendsTheDescriptorWithItsName() throws {
        let path = "/tmp/lapwing-fdstore-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let rx = try SystemdNotifierTests.Receiver(path)
        defer { unlink(path) }
        let file = open("/proc/self/exe", O_RDONLY | O_CLOEXEC)
        defer { close(file) }
        try SystemdNotifier(socketPath: path).store([file], name: "job.j1-ab.train")
        var buf = [UInt8](repeating: 0, count: 512)
        var fds = [Int32](repeating: -1, count: 4)
        var nfds: Int32 = 0, truncated: Int32 = 0
        let n = buf.withUnsafeMutableBytes { b in
            fds.withUnsafeMutableBufferPointer { f in lw_recv_with_fds(rx.fd, b.baseAddress, b.count, f.baseAddress, 4, &nfds, &truncated) }
        }
        #expect(n > 0 && String(decoding: buf[0..<max(0, n)], as: UTF8.self) == "FDSTORE=1\nFDNAME=job.j1-ab.train\n")
        #expect(nfds == 1)
        var a = stat(), b = stat()
        #expect(fstat(file, &a) == 0 && fstat(fds[0], &b) == 0 && a.st_ino == b.st_ino, "another file came")
        if nfds > 0 { close(fds[0]) }

        setenv("LISTEN_FDS", "2", 1)
        setenv("LISTEN_PID", "\(getpid())", 1)
        setenv("LISTEN_FDNAMES", "lapwingd.socket:job.j1-ab.train", 1)
        let named = SystemdNotifier.namedListenFDs()
        #expect(named.map(\.fd) == [3, 4] && named.map(\.name) == ["lapwingd.socket", "job.j1-ab.train"])
        #expect(getenv("LISTEN_FDS") == nil)
    }
}
