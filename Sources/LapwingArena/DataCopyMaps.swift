#if canImport(Glibc)
import Glibc
#endif

/// Where a job's per-node copies of its training data (`--node-data`: memfds named
/// `lapwing-data.JOB.nodeN`, see LapwingEngine's `NodeDataCopies`) have their pages, seen from
/// outside the job in /proc/PID/numa_maps: the host's mapping holds every page (it wrote the
/// copy); a worker's holds the pages it has read (a shared mapping's pages enter a forked
/// process's page tables only when it touches them).
public struct DataCopyPages: Sendable, Equatable, Codable {
    public struct NodePages: Sendable, Equatable, Codable {
        public var node: Int
        public var pages: Int
    }

    public struct Reader: Sendable, Equatable, Codable {
        /// "worker 3", as the arena's slot names it.
        public var role: String
        public var pid: Int32
        /// The pages of the copy it has read so far, by node.
        public var pages: [NodePages]
    }

    /// The node the copy is for (from its name).
    public var node: Int
    /// Its NUMA policy as numa_maps shows it ("bind:0").
    public var policy: String
    /// The bytes of its pages that the host maps (the whole copy once written).
    public var bytes: Int
    /// Those pages by node.
    public var pages: [NodePages]
    /// The processes of the job, but the host, that have read pages of it.
    public var readers: [Reader]

    /// Whether every page of the copy, the host's and its readers', sits on its node.
    public var isOnItsNode: Bool {
        (pages + readers.flatMap(\.pages)).allSatisfy { $0.node == node || $0.pages == 0 }
    }

    /// One numa_maps line of a data copy of `jobID`, parsed: the copy's node, its policy, its
    /// pages by node and the page size; nil for any other line.
    static func parse(line: Substring, jobID: String) -> (node: Int, policy: String, pages: [NodePages], pageBytes: Int)? {
        let fields = line.split(separator: " ")
        let prefix = "file=/memfd:lapwing-data.\(jobID).node"
        guard fields.count > 2, let file = fields.first(where: { $0.hasPrefix(prefix) }),
            let node = Int(file.dropFirst(prefix.count).prefix { $0.isNumber })
        else { return nil }
        var pages: [NodePages] = []
        var pageKB = 4
        for f in fields {
            if f.hasPrefix("kernelpagesize_kB="), let kb = Int(f.dropFirst("kernelpagesize_kB=".count)) { pageKB = kb }
            if f.first == "N", let eq = f.firstIndex(of: "="), let n = Int(f[f.index(after: f.startIndex)..<eq]),
                let count = Int(f[f.index(after: eq)...])
            {
                pages.append(NodePages(node: n, pages: count))
            }
        }
        return (node, String(fields[1]), pages, pageKB * 1024)
    }

    /// The copies of `jobID` in the numa_maps of `processes` (role and pid, the host's role
    /// "host"), sorted by node; empty when the job has none (or its processes cannot be read).
    public static func report(jobID: String, processes: [(role: String, pid: Int32)]) -> [DataCopyPages] {
        var copies: [Int: DataCopyPages] = [:]
        for (role, pid) in processes where pid > 0 {
            guard let text = readProcFile("/proc/\(pid)/numa_maps") else { continue }
            for line in text.split(separator: "\n") {
                guard let m = parse(line: line, jobID: jobID) else { continue }
                var copy = copies[m.node] ?? DataCopyPages(node: m.node, policy: m.policy, bytes: 0, pages: [], readers: [])
                if role == "host" {
                    copy.pages = m.pages
                    copy.bytes = m.pages.reduce(0) { $0 + $1.pages } * m.pageBytes
                } else if m.pages.contains(where: { $0.pages > 0 }) {
                    copy.readers.append(Reader(role: role, pid: pid, pages: m.pages))
                }
                copies[m.node] = copy
            }
        }
        return copies.keys.sorted().map { copies[$0]! }
    }

    /// The text of a /proc file (its size is not known beforehand), or nil.
    static func readProcFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while bytes.count < 64 << 20 {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes += chunk[..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
