import CLapwing
import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// The bytes of one input file, read once: a plain regular file is mapped read-only, a gzip file
/// (detected by its magic bytes 1f 8b, not by its name) is inflated into memory, anything else
/// (a pipe, a descriptor passed over a socket) is read into memory. Released in `deinit`.
struct InputBytes: ~Copyable {
    enum Ownership {
        case none
        case mapped(Int)
        case malloced
    }

    /// The file's name as the error messages show it.
    let name: String
    let base: UnsafePointer<UInt8>
    let count: Int
    /// True when `base` holds inflated gzip data.
    let wasGzip: Bool
    private let ownership: Ownership

    private init(name: String, base: UnsafePointer<UInt8>, count: Int, wasGzip: Bool, ownership: Ownership) {
        self.name = name
        self.base = base
        self.count = count
        self.wasGzip = wasGzip
        self.ownership = ownership
    }

    deinit {
        switch ownership {
        case .none: break
        case .mapped(let len): munmap(UnsafeMutableRawPointer(mutating: base), len)
        case .malloced: lw_gz_free(UnsafeMutableRawPointer(mutating: base))
        }
    }

    var buffer: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: base, count: count) }

    /// Opens and reads `path`; a missing file is `.notFound` naming the path. The open does not
    /// wait for a FIFO's writer (O_NONBLOCK): the read waits instead, and that wait ends when a
    /// stop signal arrives (see `read(fd:name:limit:)`). `limit` is the most bytes read into
    /// memory (nil: `ReadLimit.defaultBytes`).
    static func open(path: String, limit: Int? = nil) throws(LapwingError) -> InputBytes {
        let fd = try syscall("open", object: path) { Glibc.open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK) }
        defer { close(fd) }
        return try read(fd: fd, name: path, limit: limit)
    }

    /// Reads the file behind `fd` (which stays open and owned by the caller) from its current
    /// offset. A regular file is mapped; anything else (a pipe, a FIFO, a device, a socket) is
    /// read with poll(2) in slices of at most 100 ms, so a stop signal (`lw_stop_signal`, set by
    /// the job host's handlers) ends the wait for data that may never come: the read fails with
    /// "stopped by signal N while reading". A file (or a gzip file's inflated contents) larger
    /// than `limit` bytes is refused with the limit, the file and what was read.
    static func read(fd: Int32, name: String, limit: Int? = nil) throws(LapwingError) -> InputBytes {
        let limit = max(0, limit ?? ReadLimit.defaultBytes)
        var st = stat()
        try syscall("fstat", object: name) { fstat(fd, &st) }
        let type = st.st_mode & S_IFMT
        if type == S_IFDIR {
            throw LapwingError(.invalidArgument, "\(name): is a directory, expected a data file")
        }
        var raw: InputBytes
        if type == S_IFREG && st.st_size > 0 && lseek(fd, 0, SEEK_CUR) == 0 {
            let len = Int(st.st_size)
            if len > limit { throw ReadLimit.exceeded(name: name, limit: limit, read: len, whole: true) }
            guard let p = mmap(nil, len, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
                throw LapwingError.system("mmap", errno: errno, object: name)
            }
            _ = madvise(p, len, MADV_SEQUENTIAL)
            raw = InputBytes(
                name: name, base: UnsafePointer(p.assumingMemoryBound(to: UInt8.self)), count: len, wasGzip: false,
                ownership: .mapped(len))
        } else {
            raw = try readAll(fd: fd, name: name, limit: limit)
        }
        if lw_gz_is_gzip(raw.base, raw.count) == 0 { return raw }
        return try inflate(raw, limit: limit)
    }

    /// The error of a read that a stop signal ended.
    static func stopped(_ name: String, signal: Int32, after bytes: Int) -> LapwingError {
        LapwingError(
            .system,
            "\(name): stopped by signal \(signal) (\(String(cString: strsignal(signal)))) while reading, "
                + "after \(formatBytes(bytes))",
            errno: EINTR)
    }

    /// Reads until end of file, at most `limit` bytes, waiting for data in poll(2) slices of
    /// 100 ms with a stop check between them.
    private static func readAll(fd: Int32, name: String, limit: Int) throws(LapwingError) -> InputBytes {
        // One byte beyond the limit tells a file of exactly `limit` bytes from a longer one.
        let most = limit + 1
        var cap = min(1 << 16, most)
        var len = 0
        guard var buf = malloc(cap)?.assumingMemoryBound(to: UInt8.self) else {
            throw LapwingError(.noSpace, "\(name): out of memory reading the file")
        }
        var done = false
        defer { if !done { free(buf) } }
        while true {
            let sig = lw_stop_signal()
            if sig != 0 { throw stopped(name, signal: sig, after: len) }
            if len == cap {
                if cap == most { throw ReadLimit.exceeded(name: name, limit: limit, read: len, whole: false) }
                let ncap = min(cap * 2, most)
                guard let nb = realloc(buf, ncap) else {
                    throw LapwingError(.noSpace, "\(name): out of memory reading \(formatBytes(len))")
                }
                buf = nb.assumingMemoryBound(to: UInt8.self)
                cap = ncap
            }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pfd, 1, 100)
            if ready < 0 {
                let err = errno
                if err == EINTR { continue }
                throw LapwingError.system("poll", errno: err, object: name)
            }
            if ready == 0 { continue }
            if pfd.revents & Int16(POLLNVAL) != 0 { throw LapwingError.system("poll", errno: EBADF, object: name) }
            let n = Glibc.read(fd, buf + len, cap - len)
            if n == 0 { break }
            if n < 0 {
                let err = errno
                if err == EINTR || err == EAGAIN { continue }
                throw LapwingError.system("read", errno: err, object: name)
            }
            len += n
        }
        done = true
        return InputBytes(name: name, base: UnsafePointer(buf), count: len, wasGzip: false, ownership: .malloced)
    }

    private static func inflate(_ raw: consuming InputBytes, limit: Int) throws(LapwingError) -> InputBytes {
        var res = lw_gz_result()
        let rc = lw_gz_inflate(raw.base, raw.count, limit, &res)
        if rc == 0, let data = res.data {
            let base = UnsafePointer(data)
            return InputBytes(name: raw.name, base: base, count: res.len, wasGzip: true, ownership: .malloced)
        }
        lw_gz_free(res.data)
        let name = raw.name
        switch rc {
        case LW_GZ_TRUNCATED:
            throw LapwingError(
                .invalidData,
                "\(name): byte \(res.in_offset): truncated gzip file (the compressed data ends after "
                    + "\(res.len) inflated bytes, before the end of the gzip stream)")
        case LW_GZ_TOO_LARGE:
            throw ReadLimit.exceeded(name: name, limit: limit, read: res.len, whole: false, inflated: true)
        case LW_GZ_STOPPED:
            throw stopped(name, signal: lw_stop_signal(), after: res.in_offset)
        case LW_GZ_CORRUPT:
            let msg = withUnsafeBytes(of: res.msg) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            throw LapwingError(
                .invalidData, "\(name): byte \(res.in_offset): corrupt gzip data", detail: msg.isEmpty ? nil : msg)
        default:
            throw LapwingError.system("inflate", errno: -rc, object: name)
        }
    }
}

/// A growable array of plain values in malloc'd memory, for the parsers' hot loops; `take()`
/// hands the memory to a `Dataset`.
struct RawVec<T: BitwiseCopyable>: ~Copyable {
    private(set) var ptr: UnsafeMutablePointer<T>
    private(set) var count = 0
    private(set) var capacity: Int

    init(capacity: Int = 1024) {
        let c = max(capacity, 16)
        guard let p = malloc(c * MemoryLayout<T>.stride) else { fatalError("out of memory (\(c) elements)") }
        ptr = p.bindMemory(to: T.self, capacity: c)
        self.capacity = c
    }

    deinit { free(ptr) }

    @inline(__always)
    mutating func append(_ x: T) {
        if count == capacity { grow(count + 1) }
        ptr[count] = x
        count += 1
    }

    /// Makes room for `n` more elements.
    @inline(__always)
    mutating func reserve(more n: Int) {
        if count + n > capacity { grow(count + n) }
    }

    /// Appends without a capacity check (after `reserve(more:)`).
    @inline(__always)
    mutating func appendUnchecked(_ x: T) {
        ptr[count] = x
        count += 1
    }

    subscript(i: Int) -> T {
        get { ptr[i] }
        set { ptr[i] = newValue }
    }

    @inline(never)
    private mutating func grow(_ need: Int) {
        var c = capacity * 2
        while c < need { c *= 2 }
        guard let p = realloc(ptr, c * MemoryLayout<T>.stride) else {
            fatalError("out of memory growing a buffer to \(c) elements")
        }
        ptr = p.bindMemory(to: T.self, capacity: c)
        capacity = c
    }

    /// Gives up ownership: the caller must `free` the pointer.
    consuming func take() -> UnsafeMutablePointer<T> {
        let p = ptr
        discard self
        return p
    }
}
