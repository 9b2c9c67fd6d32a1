import CLapwing
import Foundation
import LapwingDaemon
import LapwingTestSupport
import Logging
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// lapwingd's journal entries (issue #14): the native protocol, with JOB_ID=, USER= and the
/// priority by severity, received on a real datagram socket standing for journald's.
@Suite struct JournalTests {
    @Test func entriesCarryTheJobTheUserAndThePriority() throws {
        let dir = try TestSupport.temporaryDirectory("journal")
        let path = dir + "/socket"
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        #expect(fd >= 0)
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            let bytes = Array(path.utf8)
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)

        let handler = JournalLogHandler(identifier: "lapwingd", socketPath: path)
        let logger = Logger(label: "test") { _ in handler }
        let message = "job j7-ab12 cancelled by uid 0 while running: stopping its host"
        let (level, fields) = JobLogFields.metadata(for: message)
        logger.log(level: level, "\(message)", metadata: fields)
        logger.warning("job j7-ab12 ended: failed (line one\nline two)", metadata: JobLogFields.metadata(for: "job j7-ab12 ended: failed").1)

        var buf = [UInt8](repeating: 0, count: 65536)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        let first = String(decoding: buf[0..<max(0, n)], as: UTF8.self)
        #expect(first.contains("MESSAGE=\(message)\n"), "\(first)")
        #expect(first.contains("JOB_ID=j7-ab12\n") && first.contains("USER_ID=0\n") && first.contains("USER=root\n"), "\(first)")
        #expect(first.contains("PRIORITY=6\n") && first.contains("SYSLOG_IDENTIFIER=lapwingd\n"), "\(first)")

        let m = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        let second = Array(buf[0..<max(0, m)])
        // A value with a newline goes as NAME\n, its length (64-bit little endian), the bytes, \n.
        let text = "job j7-ab12 ended: failed (line one\nline two)"
        var expected = Array("MESSAGE\n".utf8)
        withUnsafeBytes(of: UInt64(text.utf8.count).littleEndian) { expected += $0 }
        expected += Array(text.utf8) + [0x0A]
        #expect(second.starts(with: expected))
        #expect(String(decoding: second, as: UTF8.self).contains("PRIORITY=4\n"))
    }

    @Test func severitiesFollowWhatHappened() {
        #expect(JobLogFields.metadata(for: "job j1 ended: failed (x)").0 == .warning)
        #expect(JobLogFields.metadata(for: "job j1 ended: succeeded").0 == .notice)
        #expect(JobLogFields.metadata(for: "job j1 submitted by uid 0: lap-sgd").0 == .info)
        #expect(JobLogFields.metadata(for: "lapwingd stopped").1["job_id"] == nil)
    }
}
