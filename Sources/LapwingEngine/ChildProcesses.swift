import CLapwing
import LapwingCore
import LapwingTopology

#if canImport(Glibc)
import Glibc
#endif

/// The job host's children (workers and averager): forked without exec from the
/// single-threaded host, so they share its arena mapping and read-only data. Each dies with the
/// host (PR_SET_PDEATHSIG), is pinned to its CPU, and is reaped in one place. Teardown is
/// ordered: ask through the arena, then SIGTERM, then SIGKILL.
final class ChildProcesses {
    struct Child {
        let pid: pid_t
        let role: String
        /// When it was forked (monotonic seconds).
        var started = 0.0
        var status: Int32?
        /// Workers are named `worker-N`; every other child is a coordinator.
        var isWorker: Bool { role.hasPrefix("worker-") }
    }

    private(set) var children: [Child] = []

    /// Forks a child that runs `body` pinned to `cpu` and exits with its result. Must be
    /// called before the host starts any thread.
    func spawn(role: String, cpu: Int?, _ body: () -> Int32) throws(LapwingError) -> pid_t {
        fflush(nil)  // nothing buffered may be written twice
        let pid = try shimCall("fork", object: "job host (\(role))") { lw_fork_child(SIGKILL) }
        if pid == 0 {
            // Child: stop signals are the host's business; it stops us through the arena.
            _ = lw_reset_stop_handlers()
            signal(SIGINT, SIG_IGN)
            signal(SIGHUP, SIG_IGN)
            signal(SIGQUIT, SIG_IGN)
            let devnull = open("/dev/null", O_RDWR)
            if devnull >= 0 {
                dup2(devnull, 0)
                dup2(devnull, 1)
                close(devnull)
            }
            _ = lw_set_process_name("lw-\(role)")  // ps shows at most 15 bytes
            if let cpu {
                do throws(LapwingError) { try pinCurrentProcess(toCPU: cpu) } catch {
                    writeError("lapwing \(role): \(error)\n")
                    _exit(3)
                }
            }
            _exit(body())
        }
        children.append(Child(pid: pid, role: role, started: monotonicSeconds(), status: nil))
        return pid
    }

    var running: [Child] { children.filter { $0.status == nil } }

    /// Reaps every child that has ended; returns those just reaped.
    @discardableResult
    func reap(block: Bool = false) -> [Child] {
        var ended: [Child] = []
        for i in children.indices where children[i].status == nil {
            var status: Int32 = 0
            var r: pid_t
            repeat { r = waitpid(children[i].pid, &status, block ? 0 : WNOHANG) } while r < 0 && errno == EINTR
            if r == children[i].pid || (r < 0 && errno == ECHILD) {
                children[i].status = r == children[i].pid ? status : 0
                ended.append(children[i])
            }
        }
        return ended
    }

    /// Waits up to `grace` seconds for every child to exit by itself, then SIGTERM, then SIGKILL.
    func stopAll(grace: Double) {
        let deadline = monotonicSeconds() + grace
        while !running.isEmpty && monotonicSeconds() < deadline {
            reap()
            var ts = timespec(tv_sec: 0, tv_nsec: 5_000_000)
            nanosleep(&ts, nil)
        }
        for (sig, wait) in [(SIGTERM, 1.0), (SIGKILL, 5.0)] where !running.isEmpty {
            for c in running { kill(c.pid, sig) }
            let end = monotonicSeconds() + wait
            while !running.isEmpty && monotonicSeconds() < end {
                reap()
                var ts = timespec(tv_sec: 0, tv_nsec: 2_000_000)
                nanosleep(&ts, nil)
            }
        }
        reap(block: true)
    }
}
