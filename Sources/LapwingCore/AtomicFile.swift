import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Writes files so that a crash leaves either the old file or the complete new one:
/// a temp file in the same directory, written and fsync'ed, renamed over the target, and the
/// directory fsync'ed. On any failure the temp file is removed.
public enum AtomicFile {
    private static let tempCounter = Atomic<UInt64>(0)

    /// Writes the bytes that `fill` appends, then renames into place. `fill` gets a writer.
    public static func write(
        to path: String, mode: mode_t = 0o644, _ fill: (inout FileWriter) throws(LapwingError) -> Void
    ) throws(LapwingError) {
        let dir = directory(of: path)
        // Unique per call, not per process: several threads may write the same file at once,
        // and each must rename its own complete temp file (O_EXCL: never someone else's).
        let tmp = "\(path).tmp.\(getpid()).\(tempCounter.add(1, ordering: .relaxed).oldValue).\(UInt32.random(in: 0...UInt32.max))"
        let fd = try syscall("open", object: tmp) { open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode) }
        var done = false
        defer {
            if !done {
                close(fd)
                unlink(tmp)
            }
        }
        var writer = FileWriter(fd: fd, path: tmp)
        try fill(&writer)
        try writer.flush()
        try syscall("fsync", object: tmp) { fsync(fd) }
        done = true
        close(fd)
        do throws(LapwingError) {
            try syscall("rename", object: "\(tmp) -> \(path)") { rename(tmp, path) }
        } catch {
            unlink(tmp)
            throw error
        }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
    }

    /// Writes `bytes` atomically.
    public static func write(to path: String, bytes: [UInt8], mode: mode_t = 0o644) throws(LapwingError) {
        try write(to: path, mode: mode) { (w: inout FileWriter) throws(LapwingError) in try w.write(bytes) }
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}

/// A buffered writer over a file descriptor; every short write and EINTR is handled.
public struct FileWriter {
    public let fd: Int32
    public let path: String
    private var buffer: [UInt8] = []

    public init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
        buffer.reserveCapacity(1 << 16)
    }

    public mutating func write(_ bytes: some Collection<UInt8>) throws(LapwingError) {
        buffer.append(contentsOf: bytes)
        if buffer.count >= 1 << 16 { try flush() }
    }

    public mutating func write(_ string: String) throws(LapwingError) {
        try write(Array(string.utf8))
    }

    /// Writes raw memory without copying it into the buffer.
    public mutating func write(raw: UnsafeRawBufferPointer) throws(LapwingError) {
        try flush()
        try Self.writeAll(fd, raw, path)
    }

    /// Writes the raw bytes of `values` (little-endian on every platform Lapwing runs on).
    public mutating func write<T: BitwiseCopyable>(contentsOf values: [T]) throws(LapwingError) {
        try flush()
        let (fd, path) = (self.fd, self.path)
        let result: Result<Void, LapwingError> = values.withUnsafeBytes { raw in
            do throws(LapwingError) {
                try Self.writeAll(fd, raw, path)
                return .success(())
            } catch { return .failure(error) }
        }
        try result.get()
    }

    public mutating func flush() throws(LapwingError) {
        guard !buffer.isEmpty else { return }
        let (fd, path) = (self.fd, self.path)
        let result: Result<Void, LapwingError> = buffer.withUnsafeBytes { raw in
            do throws(LapwingError) {
                try Self.writeAll(fd, raw, path)
                return .success(())
            } catch { return .failure(error) }
        }
        try result.get()
        buffer.removeAll(keepingCapacity: true)
    }

    static func writeAll(_ fd: Int32, _ raw: UnsafeRawBufferPointer, _ path: String) throws(LapwingError) {
        var off = 0
        while off < raw.count {
            let n = try syscall("write", object: path) { Glibc.write(fd, raw.baseAddress! + off, raw.count - off) }
            off += n
        }
    }
}
