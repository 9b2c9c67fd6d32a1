import Foundation
import LapwingTestSupport
import Testing

/// What tools/install.sh puts where, and the shell completions it generates from the parser.
@Suite struct InstallTests {
    static let verbs = ["run", "submit", "list", "status", "watch", "pause", "resume", "cancel", "checkpoint", "rm", "export", "logs", "top", "topology", "version"]

    @Test func completionScriptsCoverEveryVerb() throws {
        let lapwing = try TestSupport.binary("lapwing")
        for shell in ["bash", "zsh", "fish"] {
            let r = try runProgram(lapwing, ["--generate-completion-script", shell])
            #expect(r.status == 0, "\(shell): \(r.stderr)")
            for verb in Self.verbs { #expect(r.stdout.contains(verb), "\(shell) completion lacks \(verb)") }
            #expect(r.stdout.contains("nesterov") && r.stdout.contains("algorithm"))
            // Option values are offered too.
            #expect(r.stdout.contains("lap-sgd") && r.stdout.contains("hogwild") && r.stdout.contains("cosine"))
        }
    }

    @Test func aUserInstallDryRunNamesBinariesUnitManPagesAndCompletions() throws {
        let home = try TestSupport.temporaryDirectory("install-home")
        defer { TestSupport.removeTemporaryDirectory(home) }
        let r = try runProgram(
            "/usr/bin/env", ["HOME=\(home)", "XDG_DATA_HOME=", "bash", SystemdUnitTests.repo + "/tools/install.sh", "--user", "--dry-run"])
        #expect(r.status == 0, "install.sh: \(r.stderr)")
        for target in [
            "\(home)/.local/bin/lapwingd", "\(home)/.local/bin/lapwing", "\(home)/.config/systemd/user/lapwingd-user.service",
            "\(home)/.local/share/man/man1/lapwing.1", "\(home)/.local/share/bash-completion/completions/lapwing",
            "\(home)/.local/share/zsh/site-functions/_lapwing",
        ] {
            #expect(r.stdout.contains(target), "dry run does not mention \(target):\n\(r.stdout)")
        }
        // A dry run writes nothing.
        #expect(try FileManager.default.contentsOfDirectory(atPath: home).isEmpty)
        let bad = try runProgram("/usr/bin/env", ["HOME=\(home)", "bash", SystemdUnitTests.repo + "/tools/install.sh", "--frobnicate"])
        #expect(bad.status == 2 && bad.stderr.contains("unknown argument '--frobnicate'"))
    }
}
