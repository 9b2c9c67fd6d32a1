import Foundation
import LapwingDaemon
import LapwingJob
import LapwingTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A user-mode lapwingd of a test's own: private runtime and state directories, started as a
/// real process, stopped (SIGTERM) and cleaned up by `stop()`.
final class DaemonHarness {
    let dir: String
    let runtime: String
    let stateHome: String
    var socket: String { runtime + "/lapwing/control.sock" }
    var stateDirectory: String { stateHome + "/lapwing" }
    private(set) var daemon: SpawnedProcess?

    init(tag: String) throws {
        dir = try TestSupport.temporaryDirectory("daemon-\(tag)")
        chmod(dir, 0o755)
        runtime = dir + "/run"
        stateHome = dir + "/state"
        try FileManager.default.createDirectory(atPath: runtime, withIntermediateDirectories: true)
        chmod(runtime, 0o755)
    }

    var environment: [String: String] { ["XDG_RUNTIME_DIR": runtime, "XDG_STATE_HOME": stateHome, "XDG_CONFIG_HOME": dir + "/config"] }

    /// Writes the daemon's configuration file (its user-mode lapwingd.conf).
    func writeConfig(_ text: String) throws {
        try FileManager.default.createDirectory(atPath: dir + "/config/lapwing", withIntermediateDirectories: true)
        try text.write(toFile: dir + "/config/lapwing/lapwingd.conf", atomically: true, encoding: .utf8)
    }

    /// Starts the daemon and waits until its socket accepts connections.
    func start(extraEnvironment: [String: String] = [:], arguments: [String] = ["--user", "--socket-mode", "0666"]) throws {
        let d = try SpawnedProcess(
            TestSupport.binary("lapwingd"), arguments, outputIn: dir,
            environment: environment.merging(extraEnvironment) { $1 })
        daemon = d
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if FileManager.default.fileExists(atPath: socket) { return }
            if d.wait(timeout: 0.05) != nil { throw TestFailure("lapwingd exited: \(d.stderr)") }
        }
        throw TestFailure("lapwingd did not listen on \(socket): \(d.stderr)")
    }

    /// Runs the CLI against this daemon.
    func cli(_ arguments: [String], timeout: Double = 300, asNobody: Bool = false, socketOverride: String? = nil) throws -> (
        status: Int32, stdout: String, stderr: String
    ) {
        let lapwing = try TestSupport.binary("lapwing")
        let socket = socketOverride ?? self.socket
        if asNobody {
            return try runProgram(
                "/usr/bin/env",
                ["XDG_RUNTIME_DIR=\(runtime)", "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", lapwing]
                    + arguments + ["--socket", socket], timeout: timeout)
        }
        return try runProgram(
            "/usr/bin/env", ["XDG_RUNTIME_DIR=\(runtime)", lapwing] + arguments + ["--socket", socket], timeout: timeout)
    }

    /// Submits a job on Fashion-MNIST with `options` (model, workers, epochs...) and returns its record.
    func submit(_ options: [String]) throws -> JobRecord {
        let r = try cli(["submit", "--json", "--data", fashionMNIST] + options)
        guard r.status == 0 else { throw TestFailure("submit \(options) exited \(r.status): \(r.stderr)") }
        return try decode(JobRecord.self, r.stdout)
    }

    /// SIGTERM, then wait for the daemon to exit.
    @discardableResult
    func stop(timeout: Double = 60) -> Int32? {
        guard let d = daemon else { return nil }
        kill(d.pid, SIGTERM)
        let status = d.wait(timeout: timeout)
        daemon = nil
        return status
    }

    /// kill -9 of the daemon (its job hosts are not its to take along).
    func crash() {
        guard let d = daemon else { return }
        kill(d.pid, SIGKILL)
        _ = d.wait(timeout: 30)
        daemon = nil
        // Its socket stays behind (the next daemon replaces it); `start` waits for the new one.
        unlink(socket)
    }

    func cleanUp() {
        stop()
        TestSupport.removeTemporaryDirectory(dir)
    }
}
