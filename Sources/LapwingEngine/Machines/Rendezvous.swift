import CLapwing
import Foundation
import LapwingCore
import LapwingJob

#if canImport(Glibc)
import Glibc
#endif

/// How the ranks of a job across machines meet when no launcher made their MPI world
/// (`lapwing run --mpi --mpi-rendezvous FILE`; docs/machines-daemons.md): rank 0's host starts
/// an `ompi-server` and writes its URI and a name of the job's own into FILE (a path every
/// machine sees, e.g. on a shared file system); every rank's bridge reads FILE, points its
/// singleton MPI at that server (OMPI_MCA_pmix_server_uri) and forms the job's communicator
/// with the others (`lw_mpi_form`: rank 0's group publishes a port per newcomer under the name).
enum Rendezvous {
    /// Waits up to `timeout` seconds for `file` to hold rank 0's server URI and the job's name
    /// (two lines), and returns them.
    static func read(_ file: String, timeout: Double) throws(LapwingError) -> (uri: String, name: String) {
        let deadline = monotonicSeconds() + timeout
        while true {
            if let text = try? String(contentsOfFile: file, encoding: .utf8) {
                let lines = text.split(separator: "\n").map(String.init)
                if lines.count == 2 {
                    guard MachineMeeting.validServer(lines[0]), MachineMeeting.validName(lines[1]) else { throw LapwingError(.invalidData, "\(file): not a Lapwing rendezvous (an ompi-server URI and a name)") }
                    return (lines[0], lines[1])
                }
            }
            if monotonicSeconds() > deadline {
                throw LapwingError(
                    .system, "\(file): rank 0 wrote no rendezvous there within \(MachineRank.secondsText(timeout)) s (--mpi-timeout)",
                    errno: ETIMEDOUT)
            }
            usleep(50_000)
        }
    }
}

/// Rank 0's `ompi-server` (the PMIx server through which the ranks' singletons meet), a child
/// of the job host that dies with it (PR_SET_PDEATHSIG), and the rendezvous file it is
/// published in. Needed only until every rank has joined; stopped with the job.
final class RendezvousServer {
    let pid: pid_t
    /// The rendezvous file it is published in (`--mpi-rendezvous`), or nil (a daemon's job:
    /// published in a host event instead).
    let file: String?
    /// Its URI and the job's rendezvous name, once it runs.
    private(set) var uri = ""
    private(set) var name = ""

    private init(pid: pid_t, file: String?) {
        self.pid = pid
        self.file = file
    }

    /// Starts the server and writes `file` if given (atomically; a stale one is replaced),
    /// naming the job `name` plus a random suffix, so that a port published by an earlier run
    /// under the same file is never looked up.
    static func start(file: String?, name: String, log: (String) -> Void) throws(LapwingError) -> RendezvousServer {
        guard let server = executable() else {
            throw LapwingError(.notFound, "--mpi-rendezvous: ompi-server is not installed (apt-get install openmpi-bin)")
        }
        if let file { unlink(file) }
        var template = Array("/tmp/lapwing-rendezvous.XXXXXX".utf8CString)
        guard let dir = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }).map({ String(cString: $0) }) else {
            throw LapwingError(.system, "--mpi-rendezvous: mkdtemp: \(String(cString: strerror(errno)))")
        }
        defer {
            unlink(dir + "/uri")
            rmdir(dir)
        }
        // Everything the child needs is made before the fork: it only redirects and execs.
        let reportFile = dir + "/uri"
        let words: [String] = [server, "--no-daemonize", "--report-uri", reportFile]
        var cargs: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) }
        cargs.append(nil)
        defer { for p in cargs { free(p) } }
        let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { if devnull >= 0 { close(devnull) } }
        fflush(nil)
        let pid = lw_fork_child(SIGKILL)
        if pid == 0 {
            if devnull >= 0 {
                dup2(devnull, 0)
                dup2(devnull, 1)
            }
            execv(server, &cargs)
            _exit(127)
        }
        guard pid > 0 else { throw LapwingError(.system, "--mpi-rendezvous: fork: \(String(cString: strerror(errno)))") }
        let started = RendezvousServer(pid: pid, file: file)
        let deadline = monotonicSeconds() + 30
        while true {
            if let uri = try? String(contentsOfFile: dir + "/uri", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), !uri.isEmpty {
                started.uri = uri
                started.name = "\(name)-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
                guard MachineMeeting.validServer(started.uri), MachineMeeting.validName(started.name) else {
                    started.stop()
                    throw LapwingError(.system, "--mpi-rendezvous: ompi-server reported an unexpected URI \"\(uri.prefix(120))\"")
                }
                if let file {
                    do throws(LapwingError) {
                        try AtomicFile.write(to: file, bytes: Array("\(started.uri)\n\(started.name)\n".utf8))
                    } catch {
                        started.stop()
                        throw error
                    }
                }
                log("rendezvous: ompi-server \(pid) at \(uri)\(file.map { ", in \($0)" } ?? "")")
                return started
            }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid || monotonicSeconds() > deadline {
                started.stop()
                throw LapwingError(.system, "--mpi-rendezvous: \(server) did not report its URI within 30 s (status \(status))")
            }
            usleep(20_000)
        }
    }

    /// Ends the server and removes the rendezvous file.
    func stop() {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        let deadline = monotonicSeconds() + 5
        while waitpid(pid, &status, WNOHANG) == 0 {
            if monotonicSeconds() > deadline {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                break
            }
            usleep(10_000)
        }
        if let file { unlink(file) }
    }

    private static func executable() -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/bin:/usr/local/bin"
        for dir in path.split(separator: ":") where access("\(dir)/ompi-server", X_OK) == 0 { return "\(dir)/ompi-server" }
        return nil
    }
}
