import Foundation
import LapwingCore
import LapwingJob
import LapwingProtocol
import LapwingTestSupport
import Testing

/// What the three tools share: one table of exit statuses (bad arguments exit 2 whatever the
/// tool and whichever way they are bad), and shell completion scripts.
@Suite struct ToolConventionTests {
    @Test func badArgumentsExit2InEveryTool() throws {
        let missing = "/nonexistent/lapwing-\(getpid()).sock"
        let cases: [(tool: String, arguments: [String], says: String)] = [
            ("lapwing", ["--frobnicate"], "--frobnicate"),
            ("lapwing", ["frobnicate"], "frobnicate"),
            ("lapwing", ["status"], "job"),
            ("lapwing", ["list", "--last", "0"], "--last 0"),
            ("lapwing", ["submit", "--priority", "500", "--data", "x", "--model", "softmax"], "--priority 500"),
            ("lapwing", ["submit", "--priority", "high", "--data", "x", "--model", "softmax"], "high"),
            ("lapwing", ["submit", "--priority", "-101", "--data", "x", "--model", "softmax"], "--priority -101"),
            ("lapwing", ["study", "--foreground", "--priority", "1", "--data", "x", "--model", "softmax", "--output-dir", "/nonexistent"],
             "not with --foreground"),
            ("lapwingd", ["--frobnicate"], "--frobnicate"),
            ("lapwingd", ["--socket-mode", "9999"], "--socket-mode 9999"),
            ("lapwingd", ["--job-cgroups", "relative/dir"], "--job-cgroups"),
            ("lapwing-numa", ["--frobnicate"], "--frobnicate"),
            ("lapwing-numa", ["frobnicate"], "frobnicate"),
            ("lapwing-numa", ["topology", "--frobnicate"], "--frobnicate"),
        ]
        for c in cases {
            let r = try runProgram(
                "/usr/bin/env", ["LAPWING_SOCKET=\(missing)", try TestSupport.binary(c.tool)] + c.arguments, timeout: 60)
            #expect(r.status == ExitStatus.usage && r.stderr.contains(c.says), "\(c.tool) \(c.arguments): \(r.status) \(r.stderr)")
        }
        // The other rows of the table, as each tool's help states it.
        for tool in ["lapwing", "lapwingd", "lapwing-numa"] {
            let help = try runProgram(try TestSupport.binary(tool), ["--help"], timeout: 60)
            #expect(help.status == 0 && help.stdout.contains("2 bad arguments"), "\(tool): \(help.stdout)")
        }
        let unreachable = try runProgram("/usr/bin/env", ["LAPWING_SOCKET=\(missing)", try TestSupport.binary("lapwing"), "list"], timeout: 60)
        #expect(unreachable.status == ExitStatus.unreachable && unreachable.stderr.contains(missing), "\(unreachable.stderr)")
    }

    @Test func lapwingNumaCompletionScriptsCoverItsCommands() throws {
        let numa = try TestSupport.binary("lapwing-numa")
        for shell in ["bash", "zsh", "fish"] {
            let r = try runProgram(numa, ["--generate-completion-script", shell], timeout: 60)
            #expect(r.status == 0 && r.stderr.isEmpty, "\(shell): \(r.status) \(r.stderr)")
            for word in ["topology", "arena", "bench", "json", "synthetic"] { #expect(r.stdout.contains(word), "\(shell) completion lacks \(word)") }
        }
        let zsh = try runProgram(numa, ["--generate-completion-script", "zsh"], timeout: 60)
        #expect(zsh.stdout.hasPrefix("#compdef lapwing-numa"), "\(zsh.stdout.prefix(80))")
        let bad = try runProgram(numa, ["--generate-completion-script", "tcsh"], timeout: 60)
        #expect(bad.status == ExitStatus.usage, "\(bad.status) \(bad.stderr)")
    }

    @Test func jobIDCompletionIsSilentAndQuickWithoutADaemon() throws {
        let lapwing = try TestSupport.binary("lapwing")
        let dir = try TestSupport.temporaryDirectory("complete-none")
        defer { TestSupport.removeTemporaryDirectory(dir) }
        // A socket that accepts connections (the kernel's backlog) but never answers: the
        // completion gives up after its half-second wait for the hello.
        let silent = try UnixListener.bind(path: dir + "/silent.sock")
        defer { silent.close() }
        for socket in [dir + "/missing.sock", dir + "/silent.sock"] {
            let begun = Date()
            let r = try runProgram(
                "/usr/bin/env", ["LAPWING_SOCKET=\(socket)", lapwing, "---completion", "status", "--", "positional@0", "0", "1", "j"],
                timeout: 60)
            let took = Date().timeIntervalSince(begun)
            #expect(r.status == 0 && r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty && r.stderr.isEmpty, "\(socket): \(r)")
            // A bound far above the half second, for a loaded machine; a completion that waited
            // for an answer would run into the 60 s limit instead.
            #expect(took < 20, "\(socket): \(took) s")
        }
    }
}

/// Completion of job ids from a running daemon (the shells call `lapwing ---completion`).
extension DaemonTests {
@Suite struct JobCompletionTests {
    @Test func aJobArgumentCompletesToTheDaemonsJobIDs() throws {
        let d = try DaemonHarness(tag: "complete")
        defer { d.cleanUp() }
        try d.start()
        let a = try d.submit(["--model", "mlp:784-64-10", "--workers", "1", "--epochs", "500", "--eval-every", "0"]).id
        let b = try d.submit(["--model", "mlp:784-64-10", "--workers", "1", "--epochs", "500", "--eval-every", "0"]).id
        let lapwing = try TestSupport.binary("lapwing")
        func complete(_ verb: String, _ word: String, socketFlag: Bool = false) throws -> [String] {
            let flag = socketFlag ? ["--socket", d.socket] : []
            let words = ["lapwing", verb] + flag + [word]
            let env = socketFlag ? [] : ["LAPWING_SOCKET=\(d.socket)"]
            let r = try runProgram(
                "/usr/bin/env",
                env + [lapwing, "---completion", verb, "--", "positional@0", "\(words.count - 1)", "\(word.count)"] + words,
                timeout: 60)
            #expect(r.status == 0, "\(r.stderr)")
            return r.stdout.split(separator: "\n").map(String.init)
        }
        #expect(Set(try complete("status", "")) == Set([a, b]))
        #expect(try complete("cancel", String(b.prefix(3))) == [b])
        #expect(try complete("logs", "x").isEmpty)
        // The command line's own --socket names the daemon.
        #expect(Set(try complete("watch", "j", socketFlag: true)) == Set([a, b]))
        for id in [a, b] { _ = try d.cli(["cancel", id]) }
    }
}
}
