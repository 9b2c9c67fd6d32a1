import CLapwing
import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// Private anonymous memory whose pages are bound to one NUMA node before anything touches them,
/// so that every page is allocated there (or the first touch fails rather than falls back).
/// Owned: `deinit` unmaps.
public final class NodeMemory: @unchecked Sendable {
    /// The start of the mapping (page aligned).
    public let base: UnsafeMutableRawPointer
    /// Bytes mapped (a whole number of pages).
    public let size: Int
    /// The node (OS index) the pages are bound to; -1 when NUMA is unavailable (no binding).
    public let node: Int32

    /// Maps `bytes` (rounded up to pages) and binds them to `node` with `mbind(MPOL_BIND)`.
    /// Pages are not touched: call `touch()` from the thread that should fault them in, or
    /// write them from anywhere (the binding decides their node). With a `name`, the pages are
    /// a memfd of that name mapped shared: children forked later read the same pages, and
    /// /proc/PID/numa_maps shows them as `file=/memfd:NAME`; without, private anonymous memory.
    ///
    /// The corresponding C functions are `mmap`, `memfd_create` and `mbind`.
    public init(bytes: Int, node: Int32, name: String? = nil) throws(LapwingError) {
        precondition(bytes > 0, "map at least one byte")
        let page = NUMA.pageSize
        let size = (bytes + page - 1) / page * page
        let what = "\(formatBytes(size)) for node \(node)"
        let p: UnsafeMutableRawPointer
        if let name {
            let fd = try shimCall("memfd_create", object: name) { lw_memfd_create(name) }
            defer { _ = lw_close(fd) }
            try shimCall("ftruncate", object: name) { lw_shm_truncate(fd, UInt64(size)) }
            guard let m = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), m != MAP_FAILED else {
                throw LapwingError.system("mmap", errno: errno, object: "\(name): \(what)")
            }
            p = m
        } else {
            guard let m = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), m != MAP_FAILED else {
                throw LapwingError.system("mmap", errno: errno, object: what)
            }
            p = m
        }
        if NUMA.isAvailable {
            guard NUMA.isUsable(node: node) else {
                munmap(p, size)
                throw LapwingError(.invalidArgument, "node \(node): not a NUMA node with memory this process may use")
            }
            let r = lw_numa_bind(p, size, node, Int32(LW_MBIND_STRICT))
            if r < 0 {
                munmap(p, size)
                throw LapwingError.system("mbind", errno: -r, object: "\(formatBytes(size)) to node \(node)")
            }
            self.node = node
        } else {
            self.node = -1
        }
        base = p
        self.size = size
    }

    deinit { munmap(base, size) }

    /// Writes every page once, so that the calling thread faults them all in (on `node`).
    public func touch(byte: UInt8 = 0) {
        memset(base, Int32(byte), size)
    }

    /// The share of `samples` pages, spread evenly over the mapping, that sit on `node`
    /// (1 when NUMA is unavailable: everything is on the one node). Untouched pages count as
    /// not on it.
    ///
    /// The corresponding C function is `move_pages` (query mode).
    public func shareOnNode(samples: Int = 16) throws(LapwingError) -> Double {
        let nodes = try pageNodes(samples: samples)
        guard node >= 0 else { return 1 }
        return Double(nodes.filter { $0 == node }.count) / Double(nodes.count)
    }

    /// The node of each of `samples` pages spread evenly over the mapping (negative: -errno for
    /// that page, e.g. -ENOENT for a page not yet touched).
    public func pageNodes(samples: Int = 16) throws(LapwingError) -> [Int32] {
        let page = NUMA.pageSize
        let pages = size / page
        let n = max(1, min(samples, pages))
        let base = UnsafeRawPointer(self.base)
        return try NUMA.queryPages((0..<n).map { base + ($0 * pages / n) * page })
    }
}
