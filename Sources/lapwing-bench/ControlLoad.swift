import CLapwing
import LapwingCore
import LapwingEngine
import LapwingJob
import LapwingProtocol

#if canImport(Glibc)
import Glibc
#endif

/// `lapwing-bench control-load`: N concurrent clients of a daemon's control socket, each sending
/// `status JOB` and `list` in turn, one request every `interval` seconds (jittered 0.5-1.5x) and
/// waiting for its reply, until stdin closes (or for `seconds`, when given). Then one JSON
/// object: requests, errors, p50/p99 latency and this process's own CPU seconds.
///
/// One thread and one epoll set drive every connection, so that the load generator costs the
/// machine as little as possible: what the benchmark measures is the daemon's cost to a job.
struct ControlLoad {
    var socket: String
    var job: String
    var clients = 200
    var interval = 1.0
    /// Run this long instead of until stdin closes.
    var seconds: Double?

    final class Client {
        let connection: UnixConnection
        var due: Double
        var sentAt = 0.0
        var waiting = false
        var count = 0
        init(_ c: UnixConnection, due: Double) {
            connection = c
            self.due = due
        }
    }

    /// A success: the server writes keys sorted, so it starts `{"id":N,"ok":true`.
    static func isSuccess(_ json: [UInt8]) -> Bool {
        guard json.starts(with: #"{"id":"#.utf8), let comma = json.firstIndex(of: UInt8(ascii: ",")) else { return false }
        return json[(comma + 1)...].starts(with: #""ok":true"#.utf8)
    }

    func run() throws -> [String: Any] {
        var rng = SeededGenerator(seed: 42)
        let start = monotonicSeconds()
        var clients: [Int32: Client] = [:]
        let ep = try shimCall("epoll_create1", object: "control-load") { lw_epoll_create() }
        defer { close(ep) }
        if seconds == nil {
            try shimCall("epoll_ctl", object: "stdin") { lw_epoll_watch(ep, 0, UInt32(LW_EV_IN), 1) }
        }
        for _ in 0..<self.clients {
            let c = try ControlClient(path: socket, client: "lapwing-bench control-load", timeout: .seconds(30))
            try c.connection.setNonBlocking()
            let fd = c.connection.fd
            clients[fd] = Client(c.connection, due: start + interval * Double(rng.nextUnitFloat()))
            try shimCall("epoll_ctl", object: "client") { lw_epoll_watch(ep, fd, UInt32(LW_EV_IN), 1) }
        }
        let status = try ClientMessage.request(Request(id: 0, verb: .status, args: ["job": .string(job)])).frame()
        let list = try ClientMessage.request(Request(id: 1, verb: .list)).frame()
        var latencies: [Double] = []
        var errors = 0
        var fds = [Int32](repeating: -1, count: 64)
        var events = [UInt32](repeating: 0, count: 64)
        var stdinOpen = true
        let end = seconds.map { start + $0 } ?? .infinity
        while stdinOpen && monotonicSeconds() < end {
            let now = monotonicSeconds()
            var nextDue = now + 0.1
            for c in clients.values where !c.waiting {
                if c.due <= now {
                    c.sentAt = monotonicSeconds()
                    c.waiting = true
                    do { try c.connection.send(frame: c.count % 2 == 0 ? status : list) } catch { errors += 1 }
                } else {
                    nextDue = min(nextDue, c.due)
                }
            }
            let timeout = Int32(max(0, (nextDue - monotonicSeconds()) * 1000).rounded(.up))
            let n = lw_epoll_wait(ep, &fds, &events, 64, timeout)
            for k in 0..<max(0, Int(n)) {
                if fds[k] == 0 {
                    var b = [UInt8](repeating: 0, count: 256)
                    if read(0, &b, 256) <= 0 { stdinOpen = false }
                    continue
                }
                guard let c = clients[fds[k]] else { continue }
                do {
                    guard try c.connection.readAvailable() else {
                        errors += 1
                        _ = lw_epoll_forget(ep, fds[k])
                        clients[fds[k]] = nil
                        continue
                    }
                    while let frame = try c.connection.nextFrame() {
                        latencies.append(monotonicSeconds() - c.sentAt)
                        // Only success matters here, and the server writes keys sorted, so a
                        // success starts {"id":N,"ok":true: parsing every reply in full would
                        // make this process cost the job more than the daemon does.
                        if !Self.isSuccess(frame.json) { errors += 1 }
                        c.waiting = false
                        c.count += 1
                        c.due = monotonicSeconds() + interval * (0.5 + Double(rng.nextUnitFloat()))
                    }
                } catch {
                    errors += 1
                }
            }
        }
        latencies.sort()
        func pct(_ p: Double) -> Double {
            latencies.isEmpty ? 0 : (latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))] * 1e6).rounded() / 1e3
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        return [
            "clients": self.clients, "connected": clients.count, "interval_s": interval, "requests": latencies.count,
            "errors": errors, "p50_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": pct(1.0),
            "seconds": (monotonicSeconds() - start), "cpu_s": cpu,
        ]
    }
}
