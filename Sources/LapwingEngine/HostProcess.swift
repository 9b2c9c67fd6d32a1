import CLapwing
import Foundation
import LapwingCore
import LapwingJob
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A job host seen from the process that launched it (`lapwing run`, later the daemon): the
/// host is our own binary started with posix_spawn (fork+exec, so a launcher with threads is
/// safe), given its `JobSpec` as JSON on stdin, and reporting `HostEvent`s as JSON lines on
/// stdout.
///
/// `events` is for one reading thread; `kill` and `wait` may be called from any thread.
public final class HostProcess: @unchecked Sendable {
    public let pid: pid_t
    public let spec: JobSpec
    private var eventsFD: Int32
    private var pending: [UInt8] = []
    private let reapedStatus = Mutex<Int32?>(nil)
    private var reaped: Int32? { reapedStatus.withLock { $0 } }

    /// Starts `executable arguments...` as the job host of `spec`. `descriptors` (by role) are
    /// passed to the host as fds 3, 4, ... and recorded in the spec it receives. `spawned` runs
    /// once the host exists and before it has its spec, i.e. before it forks any process (the
    /// daemon moves it into the job's control group there).
    public init(
        executable: String, arguments: [String], spec: JobSpec, descriptors: [(role: String, fd: Int32)] = [],
        stderrPath: String? = nil, spawned: (pid_t) -> Void = { _ in }
    ) throws(LapwingError) {
        var spec = spec
        if !descriptors.isEmpty {
            spec.dataDescriptors = Dictionary(
                uniqueKeysWithValues: descriptors.enumerated().map { ($1.role, Int32(3 + $0)) })
        }
        self.spec = spec
        var toHost: [Int32] = [-1, -1]
        var fromHost: [Int32] = [-1, -1]
        try shimCall("pipe2", object: "job \(spec.id) spec pipe") { lw_pipe_cloexec(&toHost) }
        do throws(LapwingError) {
            try shimCall("pipe2", object: "job \(spec.id) event pipe") { lw_pipe_cloexec(&fromHost) }
        } catch {
            close(toHost[0])
            close(toHost[1])
            throw error
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, toHost[0], 0)
        posix_spawn_file_actions_adddup2(&actions, fromHost[1], 1)
        if let stderrPath {
            posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_APPEND, 0o640)
        }
        // Descriptors go to 3, 4, ...: first dup every one above the target range, so that no
        // dup2 overwrites a source not yet moved.
        for (i, d) in descriptors.enumerated() { posix_spawn_file_actions_adddup2(&actions, d.fd, Int32(100 + i)) }
        for i in descriptors.indices { posix_spawn_file_actions_adddup2(&actions, Int32(100 + i), Int32(3 + i)) }
        for i in descriptors.indices { posix_spawn_file_actions_addclose(&actions, Int32(100 + i)) }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for a in argv { free(a) } }
        // The host starts with no blocked signals and default dispositions, whatever the
        // launching thread had (a daemon's threads block signals).
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attr, &none)
        var all = sigset_t()
        sigfillset(&all)
        sigdelset(&all, SIGKILL)
        sigdelset(&all, SIGSTOP)
        posix_spawnattr_setsigdefault(&attr, &all)
        var child: pid_t = 0
        let rc = posix_spawn(&child, executable, &actions, &attr, argv, environ)
        close(toHost[0])
        close(fromHost[1])
        guard rc == 0 else {
            close(toHost[1])
            close(fromHost[0])
            throw LapwingError.system("posix_spawn", errno: rc, object: executable)
        }
        pid = child
        eventsFD = fromHost[0]
        spawned(child)
        // The spec is small (well under a pipe's buffer); write it and close, so the host sees EOF.
        let json = (try? JSONEncoder().encode(spec)) ?? Data()
        _ = json.withUnsafeBytes { raw in write(toHost[1], raw.baseAddress, raw.count) }
        close(toHost[1])
    }

    deinit {
        if eventsFD >= 0 { close(eventsFD) }
        if reaped == nil { _ = wait(block: false) }
    }

    /// The events that arrived within `timeout` seconds; nil once the host closed its stdout.
    public func events(timeout: Double) -> [HostEvent]? {
        guard eventsFD >= 0 else { return nil }
        var pfd = pollfd(fd: eventsFD, events: Int16(POLLIN), revents: 0)
        let r = poll(&pfd, 1, Int32(timeout * 1000))
        if r <= 0 { return [] }
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { read(eventsFD, $0.baseAddress, $0.count) }
        if n < 0 { return errno == EINTR || errno == EAGAIN ? [] : closeEvents() }
        if n == 0 { return closeEvents() }
        pending.append(contentsOf: chunk[0..<n])
        var out: [HostEvent] = []
        while let nl = pending.firstIndex(of: 0x0A) {
            let line = String(decoding: pending[..<nl], as: UTF8.self)
            pending.removeSubrange(...nl)
            if let e = HostEvent.decode(line: line) { out.append(e) }
        }
        return out
    }

    private func closeEvents() -> [HostEvent]? {
        close(eventsFD)
        eventsFD = -1
        return nil
    }

    /// Sends `signal` to the host.
    public func kill(_ signal: Int32) { if reaped == nil { _ = Glibc.kill(pid, signal) } }

    /// The host's wait status once it has ended (blocking or not); nil while it runs.
    public func wait(block: Bool = true) -> Int32? {
        if let reaped { return reaped }
        var status: Int32 = 0
        while true {
            let r = waitpid(pid, &status, block ? 0 : WNOHANG)
            if r == pid {
                reapedStatus.withLock { $0 = status }
                return status
            }
            if r == 0 { return nil }
            if errno != EINTR { return nil }
        }
    }
}

/// Human words for a wait status: "exited with status 1", "killed by signal 9 (Killed)".
public func describeWaitStatus(_ status: Int32) -> String {
    let sig = status & 0x7f
    if sig == 0 { return "exited with status \((status >> 8) & 0xff)" }
    return "killed by signal \(sig) (\(String(cString: strsignal(sig))))"
}
