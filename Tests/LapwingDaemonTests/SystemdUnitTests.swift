import Foundation
import LapwingTestSupport
import Testing

/// The unit files pass systemd's own checks, with ExecStart pointed at the built daemon.
@Suite struct SystemdUnitTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path

    @Test func systemdAnalyzeVerifiesTheUnitsWithNothingOnStderr() throws {
        let dir = try TestSupport.temporaryDirectory("units")
        defer { TestSupport.removeTemporaryDirectory(dir) }
        let daemon = try TestSupport.binary("lapwingd")
        for name in ["lapwingd.service", "lapwingd.socket", "lapwingd-metrics.socket", "lapwingd-user.service"] {
            let text = try String(contentsOfFile: Self.repo + "/systemd/" + name, encoding: .utf8)
                .replacingOccurrences(of: "/usr/local/bin/lapwingd", with: daemon)
                .replacingOccurrences(of: "%h/.local/bin/lapwingd", with: daemon)
            try text.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8)
        }
        let r = try runProgram(
            "/usr/bin/env",
            ["-C", dir, "systemd-analyze", "verify", "--man=no", "lapwingd.service", "lapwingd.socket", "lapwingd-metrics.socket", "lapwingd-user.service"])
        #expect(r.status == 0, "systemd-analyze verify: \(r.stderr)")
        #expect(r.stderr.isEmpty, "systemd-analyze verify printed: \(r.stderr)")
    }

    @Test func sysusersCreatesTheLapwingUser() throws {
        let root = try TestSupport.temporaryDirectory("sysusers")
        defer { TestSupport.removeTemporaryDirectory(root) }
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        let r = try runProgram("/usr/bin/env", ["systemd-sysusers", "--root=" + root, Self.repo + "/systemd/sysusers.d/lapwing.conf"])
        #expect(r.status == 0, "systemd-sysusers: \(r.stderr)")
        let passwd = try String(contentsOfFile: root + "/etc/passwd", encoding: .utf8)
        #expect(passwd.contains("lapwing:x:") && passwd.contains("/var/lib/lapwing"))
    }

    @Test func theServiceKeepsTheArenasAndAllowsTheNUMACalls() throws {
        let unit = try String(contentsOfFile: Self.repo + "/systemd/lapwingd.service", encoding: .utf8)
        #expect(unit.contains("\nRemoveIPC=no\n"))
        #expect(unit.contains("\nType=notify\n") && unit.contains("\nWatchdogSec="))
        for call in ["mbind", "get_mempolicy", "move_pages", "sched_setaffinity"] { #expect(unit.contains(call)) }
        // One job's OOM kill must not stop the service (systemd's default OOMPolicy=stop would).
        #expect(unit.contains("\nOOMPolicy=continue\n"))
    }
}
