import CLapwing
import Foundation
import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// The metrics endpoint: HTTP/1.1 `GET /metrics` on a loopback TCP socket (one the daemon
/// binds, `--metrics-address HOST:PORT`, or one systemd passes, the lapwingd-metrics socket),
/// answered by one thread, one connection at a time. Clients are bounded: 8 KiB of request
/// head, 5 s to send it, then the connection is closed; anything but GET /metrics gets 404 or
/// 405.
public final class MetricsServer: Sendable {
    let listener: Int32
    let manager: JobManager

    public init(listener: Int32, manager: JobManager) {
        self.listener = listener
        self.manager = manager
    }

    /// Binds `address` ("127.0.0.1:9464", "[::1]:9464", "localhost:9464"); loopback only.
    public static func listen(_ address: String) throws(LapwingError) -> Int32 {
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
            throw LapwingError(.invalidArgument, "--metrics-address \(address): give HOST:PORT, e.g. 127.0.0.1:9464")
        }
        var host = String(address[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let fd = lw_tcp_listen_loopback(host, Int32(port), 16)
        if fd == -EPERM {
            throw LapwingError(.invalidArgument, "--metrics-address \(address): not a loopback address (metrics are served on 127.0.0.0/8 or ::1 only)")
        }
        guard fd >= 0 else { throw LapwingError.system("listen", errno: -fd, object: "metrics address \(address)") }
        return fd
    }

    /// Serves until the listener is closed.
    public func start() {
        let thread = Thread { [self] in serve() }
        thread.name = "metrics"
        thread.start()
    }

    func serve() {
        while true {
            // lw_unix_accept is accept4(SOCK_CLOEXEC), for any kind of listening socket.
            let c = lw_unix_accept(listener)
            if c < 0 {
                if c == -EINTR || c == -ECONNABORTED || c == -EMFILE || c == -ENFILE { usleep(10_000); continue }
                return
            }
            answer(c)
            close(c)
        }
    }

    func answer(_ fd: Int32) {
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var head: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 2048)
        let end: [UInt8] = [13, 10, 13, 10]
        while head.count < 8192 {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return }
            head += buf[0..<n]
            if head.count >= 4, (0...(head.count - 4)).contains(where: { Array(head[$0..<$0 + 4]) == end }) { break }
        }
        let requestLine = String(decoding: head.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        let parts = requestLine.split(separator: " ")
        let status: String
        var body: [UInt8]
        var type = "text/plain; charset=utf-8"
        if parts.count != 3 || !parts[2].hasPrefix("HTTP/1.") {
            (status, body) = ("400 Bad Request", Array("a request line is METHOD PATH HTTP/1.x\n".utf8))
        } else if parts[0] != "GET" && parts[0] != "HEAD" {
            (status, body) = ("405 Method Not Allowed", Array("only GET\n".utf8))
        } else if parts[1] != "/metrics" && !parts[1].hasPrefix("/metrics?") {
            (status, body) = ("404 Not Found", Array("the metrics are at /metrics\n".utf8))
        } else {
            manager.metrics.refresh(manager.list(), otherLoad: manager.otherLoadCores)
            status = "200 OK"
            body = manager.metrics.registry.emitToBuffer()
            type = "text/plain; version=0.0.4; charset=utf-8"
        }
        var response = Array(
            "HTTP/1.1 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8)
        if parts.first != "HEAD" { response += body }
        var sent = 0
        while sent < response.count {
            let n = response[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            sent += n
        }
        body.removeAll()
    }
}
