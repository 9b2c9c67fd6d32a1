import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Helpers the test targets share: the binaries SwiftPM built beside the test bundle, running
/// them, and scratch directories.
public enum TestSupport {
    /// The executable `name` built beside this test bundle (in `.build/<triple>/<config>`).
    public static func binary(_ name: String) throws -> String {
        let fm = FileManager.default
        let exe = (try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        while dir.path != "/" {
            let candidate = dir.appendingPathComponent(name)
            if fm.isExecutableFile(atPath: candidate.path) { return candidate.path }
            dir = dir.deletingLastPathComponent()
        }
        throw TestFailure("\(name): not found in any folder above \(exe)")
    }

    /// A fresh directory under /tmp, removed by `removeTemporaryDirectory`.
    public static func temporaryDirectory(_ tag: String) throws -> String {
        let path = "/tmp/lapwing-test-\(tag)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    public static func removeTemporaryDirectory(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// A unique job id for a test.
    public static func jobID(_ tag: String) -> String {
        "t\(tag)-\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// A child process started in its own process group (so a test can send it what a terminal's
/// Ctrl-C sends), with stdout and stderr going to files.
public final class SpawnedProcess {
    public let pid: pid_t
    public let stdoutPath: String
    public let stderrPath: String
    public private(set) var status: Int32?

    public init(_ executable: String, _ arguments: [String], outputIn dir: String, environment: [String: String] = [:]) throws {
        stdoutPath = dir + "/stdout-\(UInt32.random(in: 0...UInt32.max))"
        stderrPath = stdoutPath.replacingOccurrences(of: "stdout", with: "stderr")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // Own process group; no blocked signals and default dispositions, whatever the test
        // thread had (thread pools block signals, and children would inherit that).
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attr, 0)
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attr, &none)
        var all = sigset_t()
        sigfillset(&all)
        sigdelset(&all, SIGKILL)
        sigdelset(&all, SIGSTOP)
        posix_spawnattr_setsigdefault(&attr, &all)
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        let envp = env.map { strdup("\($0)=\($1)") } + [nil]
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attr, argv, envp)
        guard rc == 0 else { throw TestFailure("posix_spawn \(executable): \(String(cString: strerror(rc)))") }
        pid = child
    }

    deinit {
        if status == nil {
            kill(-pid, SIGKILL)
            _ = wait(timeout: 5)
        }
    }

    /// Sends `signal` to the whole process group, as a terminal does.
    public func signalGroup(_ signal: Int32) { kill(-pid, signal) }

    /// Waits up to `timeout` seconds; returns the exit code (128 + signal when killed), or nil.
    @discardableResult
    public func wait(timeout: Double) -> Int32? {
        if let status { return status }
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            var s: Int32 = 0
            let r = waitpid(pid, &s, WNOHANG)
            if r == pid {
                let code = (s & 0x7f) == 0 ? (s >> 8) & 0xff : 128 + (s & 0x7f)
                status = code
                return code
            }
            usleep(20_000)
        }
        return nil
    }

    public var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
}

/// Runs a program to completion and returns (exit code, stdout, stderr).
public func runProgram(_ executable: String, _ arguments: [String], timeout: Double = 600) throws -> (
    status: Int32, stdout: String, stderr: String
) {
    let dir = try TestSupport.temporaryDirectory("run")
    defer { TestSupport.removeTemporaryDirectory(dir) }
    let p = try SpawnedProcess(executable, arguments, outputIn: dir)
    guard let status = p.wait(timeout: timeout) else {
        p.signalGroup(SIGKILL)
        throw TestFailure("\(executable) \(arguments.joined(separator: " ")): still running after \(timeout) s")
    }
    return (status, p.stdout, p.stderr)
}

/// The pids of processes whose command name (comm) starts with `prefix` and whose parent chain
/// includes `ancestor`.
public func descendants(of ancestor: pid_t) -> [pid_t] {
    var parent: [pid_t: pid_t] = [:]
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = pid_t(entry), let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { continue }
        let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
        if fields.count > 1, let ppid = pid_t(fields[1]) { parent[pid] = ppid }
    }
    return parent.keys.filter { pid in
        var p = parent[pid]
        while let q = p, q > 1 {
            if q == ancestor { return true }
            p = parent[q]
        }
        return false
    }.sorted()
}

/// The command name of a process, or nil once it is gone.
public func processName(_ pid: pid_t) -> String? {
    (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
}

/// The CPUs a process may run on, from /proc/PID/status.
public func allowedCPUs(_ pid: pid_t) -> String? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("Cpus_allowed_list:") {
        return line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)
    }
    return nil
}

/// Whether this process may make network namespaces for the checks across machines (root with
/// CAP_NET_ADMIN, iproute2, and Open MPI's mpirun and ompi-server installed): tried for real,
/// with a namespace of its own that it removes.
public func canMakeNetworkNamespaces() -> Bool {
    let fm = FileManager.default
    guard getuid() == 0, fm.isExecutableFile(atPath: "/usr/bin/mpirun"), fm.isExecutableFile(atPath: "/usr/bin/ompi-server"),
        fm.isExecutableFile(atPath: "/usr/sbin/ip") || fm.isExecutableFile(atPath: "/sbin/ip")
    else { return false }
    let name = "lwprobe\(getpid())"
    guard let r = try? runProgram("/usr/bin/env", ["ip", "netns", "add", name], timeout: 30), r.status == 0 else { return false }
    _ = try? runProgram("/usr/bin/env", ["ip", "netns", "del", name], timeout: 30)
    return true
}
