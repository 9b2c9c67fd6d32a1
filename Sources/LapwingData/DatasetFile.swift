import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// The binary cache of a parsed data set, which workers map read-only (one copy in the page cache).
///
/// Layout (little-endian, every array 64-byte aligned, zero padding between):
///
///     0   magic "LWDATA01"        8   u32 version (1)      12  u32 header size (128)
///     16  u64 rows                24  u64 cols             32  u64 nnz
///     40  u32 flags (1 = sparse)  44  u32 label kind (0 binary, 1 multiclass, 2 real)
///     48  u64 classes             56  u64 labels offset    64  u64 dense offset (0 if sparse)
///     72  u64 rowStart offset     80  u64 indices offset   88  u64 values offset (0 if dense)
///     96  u64 file size           104 reserved (zero) up to 128
///
/// then labels (rows Float32), and either the dense block (rows * cols Float32) or the CSR
/// arrays rowStart (rows + 1 Int64), indices (nnz Int32), values (nnz Float32).
public enum DatasetFile {
    public static let magic: [UInt8] = Array("LWDATA01".utf8)
    public static let version: UInt32 = 1
    public static let headerSize = 128
    static let alignment = 64

    static func align(_ x: Int) -> Int { (x + alignment - 1) / alignment * alignment }

    struct Layout {
        var labels = 0, dense = 0, rowStart = 0, indices = 0, values = 0, size = 0
    }

    /// Offsets of the arrays; nil when the sizes overflow.
    static func layout(rows: Int, cols: Int, nnz: Int, sparse: Bool) -> Layout? {
        func add(_ a: Int, _ count: Int, _ width: Int) -> (Int, Int)? {
            let (bytes, o1) = count.multipliedReportingOverflow(by: width)
            let (end, o2) = a.addingReportingOverflow(bytes)
            if o1 || o2 || end > Int.max - alignment { return nil }
            return (a, align(end))
        }
        var l = Layout()
        guard let (lab, next) = add(headerSize, rows, 4) else { return nil }
        l.labels = lab
        if sparse {
            guard let (rs, n1) = add(next, rows + 1, 8), let (ix, n2) = add(n1, nnz, 4),
                let (vs, n3) = add(n2, nnz, 4)
            else { return nil }
            l.rowStart = rs
            l.indices = ix
            l.values = vs
            l.size = n3
        } else {
            let (cells, o) = rows.multipliedReportingOverflow(by: cols)
            guard !o, let (dn, n1) = add(next, cells, 4) else { return nil }
            l.dense = dn
            l.size = n1
        }
        return l
    }
}

extension Dataset {
    /// Writes the data set as a cache file, atomically: a temporary file in the same directory,
    /// written, fsync'd and renamed over `path`, then the directory fsync'd. On failure the
    /// temporary file is removed and `path` is untouched.
    public func write(to path: String) throws(LapwingError) {
        guard let l = DatasetFile.layout(rows: rows, cols: cols, nnz: nnz, sparse: isSparse) else {
            throw LapwingError(.invalidArgument, "\(path): data set too large for a cache file")
        }
        var header = [UInt8](repeating: 0, count: DatasetFile.headerSize)
        func put<T: FixedWidthInteger>(_ v: T, at off: Int) {
            withUnsafeBytes(of: v.littleEndian) { for (k, b) in $0.enumerated() { header[off + k] = b } }
        }
        for (k, b) in DatasetFile.magic.enumerated() { header[k] = b }
        put(DatasetFile.version, at: 8)
        put(UInt32(DatasetFile.headerSize), at: 12)
        put(UInt64(rows), at: 16)
        put(UInt64(cols), at: 24)
        put(UInt64(nnz), at: 32)
        put(UInt32(isSparse ? 1 : 0), at: 40)
        switch labelKind {
        case .binary: put(UInt32(0), at: 44)
        case .multiclass(let c):
            put(UInt32(1), at: 44)
            put(UInt64(c), at: 48)
        case .real: put(UInt32(2), at: 44)
        }
        put(UInt64(l.labels), at: 56)
        put(UInt64(l.dense), at: 64)
        put(UInt64(l.rowStart), at: 72)
        put(UInt64(l.indices), at: 80)
        put(UInt64(l.values), at: 88)
        put(UInt64(l.size), at: 96)

        let (dir, base) = splitPath(path)
        let tmp = "\(dir)/.\(base).tmp.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        let fd = try syscall("open", object: tmp) { open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644) }
        var renamed = false
        defer { if !renamed { unlink(tmp) } }
        do {
            defer { close(fd) }
            let h = UnsafeMutableRawPointer.allocate(byteCount: header.count, alignment: 8)
            defer { h.deallocate() }
            for (k, byte) in header.enumerated() { h.storeBytes(of: byte, toByteOffset: k, as: UInt8.self) }
            try writeAll(fd, h, header.count, at: 0, name: tmp)
            try writeAll(fd, labelPtr, rows * 4, at: l.labels, name: tmp)
            if isSparse {
                try writeAll(fd, rowStartPtr!, (rows + 1) * 8, at: l.rowStart, name: tmp)
                try writeAll(fd, indexPtr!, nnz * 4, at: l.indices, name: tmp)
                try writeAll(fd, valuePtr!, nnz * 4, at: l.values, name: tmp)
            } else {
                try writeAll(fd, densePtr!, rows * cols * 4, at: l.dense, name: tmp)
            }
            // The padding between arrays and after the last one reads as zeros.
            try syscall("ftruncate", object: tmp) { ftruncate(fd, off_t(l.size)) }
            try syscall("fsync", object: tmp) { fsync(fd) }
        }
        withExtendedLifetime(self) {}
        try syscall("rename", object: path) { rename(tmp, path) }
        renamed = true
        let dfd = try syscall("open", object: dir) { open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(dfd) }
        try syscall("fsync", object: dir) { fsync(dfd) }
    }

    /// Maps a cache file read-only (`PROT_READ`, `MAP_SHARED`) after checking its header, its
    /// size and the data invariants (CSR row starts monotone, indices in range and increasing,
    /// labels of the stated kind, values finite).
    public static func map(path: String) throws(LapwingError) -> Dataset {
        let fd = try syscall("open", object: path) { open(path, O_RDONLY | O_CLOEXEC) }
        defer { close(fd) }
        return try map(fd: fd, name: path)
    }

    /// Maps the cache file behind `fd` (which stays open and owned by the caller).
    public static func map(fd: Int32, name: String) throws(LapwingError) -> Dataset {
        var st = stat()
        try syscall("fstat", object: name) { fstat(fd, &st) }
        if st.st_mode & S_IFMT != S_IFREG {
            throw LapwingError(.invalidArgument, "\(name): not a regular file")
        }
        let size = Int(st.st_size)
        if size < DatasetFile.headerSize {
            throw LapwingError(
                .invalidData,
                "\(name): truncated cache file: \(size) bytes, shorter than the \(DatasetFile.headerSize)-byte header")
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            throw LapwingError.system("mmap", errno: errno, object: name)
        }
        do throws(LapwingError) {
            return try validate(base: p, size: size, name: name)
        } catch {
            munmap(p, size)
            throw error
        }
    }

    private static func validate(base p: UnsafeMutableRawPointer, size: Int, name: String) throws(LapwingError)
        -> Dataset
    {
        let b = UnsafeRawPointer(p)
        func u64(_ off: Int) -> UInt64 { UInt64(littleEndian: b.loadUnaligned(fromByteOffset: off, as: UInt64.self)) }
        func u32(_ off: Int) -> UInt32 { UInt32(littleEndian: b.loadUnaligned(fromByteOffset: off, as: UInt32.self)) }
        func bad(_ field: String, _ why: String) -> LapwingError {
            LapwingError(.invalidData, "\(name): \(field): \(why)")
        }
        for k in 0..<8 where b.load(fromByteOffset: k, as: UInt8.self) != DatasetFile.magic[k] {
            throw bad("magic", "not a Lapwing data cache (expected \"LWDATA01\")")
        }
        let version = u32(8)
        if version != DatasetFile.version {
            throw LapwingError(
                .unsupported, "\(name): version: cache format version \(version) not supported (expected \(DatasetFile.version))")
        }
        if u32(12) != UInt32(DatasetFile.headerSize) {
            throw bad("header size", "\(u32(12)), expected \(DatasetFile.headerSize)")
        }
        let limit = UInt64(Int32.max)
        let rows64 = u64(16), cols64 = u64(24), nnz64 = u64(32)
        if rows64 == 0 || rows64 > UInt64(Int.max / 16) { throw bad("rows", "\(rows64) out of range") }
        if cols64 > limit { throw bad("cols", "\(cols64) out of range") }
        if nnz64 > UInt64(Int.max / 16) { throw bad("nnz", "\(nnz64) out of range") }
        let rows = Int(rows64), cols = Int(cols64), nnz = Int(nnz64)
        let flags = u32(40)
        if flags > 1 { throw bad("flags", "unknown flags \(flags)") }
        let sparse = flags == 1
        let kind: LabelKind
        switch u32(44) {
        case 0: kind = .binary
        case 1:
            let c = u64(48)
            if c == 0 || c > 1_000_000 { throw bad("classes", "\(c) out of range") }
            kind = .multiclass(classes: Int(c))
        case 2: kind = .real
        default: throw bad("label kind", "unknown label kind \(u32(44))")
        }
        if !sparse && Int(rows).multipliedReportingOverflow(by: cols).partialValue != nnz {
            throw bad("nnz", "\(nnz) but a dense \(rows)x\(cols) block has \(rows * cols) cells")
        }
        guard let l = DatasetFile.layout(rows: rows, cols: cols, nnz: nnz, sparse: sparse) else {
            throw bad("rows", "sizes overflow")
        }
        let fields: [(String, Int, UInt64)] = [
            ("labels offset", l.labels, u64(56)), ("dense offset", l.dense, u64(64)),
            ("rowStart offset", l.rowStart, u64(72)), ("indices offset", l.indices, u64(80)),
            ("values offset", l.values, u64(88)),
        ]
        for (field, want, have) in fields where UInt64(want) != have {
            throw bad(field, "\(have), expected \(want)")
        }
        let declared = u64(96)
        if declared != UInt64(l.size) {
            throw bad("file size", "header says \(declared) bytes but the arrays need \(l.size)")
        }
        if size < l.size {
            throw bad("file size", "truncated cache file: \(size) bytes, the header says \(l.size)")
        }
        if size > l.size {
            throw bad("file size", "\(size) bytes, \(size - l.size) more than the header says (\(l.size))")
        }
        let labels = UnsafePointer<Float>((b + l.labels).assumingMemoryBound(to: Float.self))
        for i in 0..<rows {
            let v = labels[i]
            switch kind {
            case .binary:
                if v != 1 && v != -1 { throw bad("labels", "row \(i): label is not ±1") }
            case .multiclass(let c):
                if !(v >= 0 && v < Float(c) && v == v.rounded(.towardZero)) {
                    throw bad("labels", "row \(i): label is not a class index below \(c)")
                }
            case .real:
                if !v.isFinite { throw bad("labels", "row \(i): label is not finite") }
            }
        }
        let facts = LabelFacts.scan(labels, count: rows) { i in "\(name): row \(i)" }
        let storage = DatasetStorage(.mapped(p, size))
        if sparse {
            let rs = UnsafePointer<Int64>((b + l.rowStart).assumingMemoryBound(to: Int64.self))
            let ix = UnsafePointer<Int32>((b + l.indices).assumingMemoryBound(to: Int32.self))
            let vs = UnsafePointer<Float>((b + l.values).assumingMemoryBound(to: Float.self))
            if rs[0] != 0 { throw bad("rowStart", "row 0 starts at \(rs[0]), expected 0") }
            if rs[rows] != Int64(nnz) { throw bad("rowStart", "last entry \(rs[rows]), expected nnz \(nnz)") }
            for i in 0..<rows {
                let a = Int(rs[i]), e = Int(rs[i + 1])
                if e < a || e > nnz { throw bad("rowStart", "row \(i) ends at \(e), before its start \(a) or past nnz") }
                var prev: Int32 = -1
                for k in a..<e {
                    let j = ix[k]
                    if j <= prev || Int(j) >= cols {
                        throw bad("indices", "row \(i): index \(j) not increasing or not below cols \(cols)")
                    }
                    prev = j
                    if !vs[k].isFinite { throw bad("values", "row \(i): value not finite") }
                }
            }
            return Dataset(
                rows: rows, cols: cols, nnz: nnz, labelKind: kind, source: name, storage: storage, labels: labels,
                rowStart: rs, indices: ix, values: vs, labelFacts: facts)
        }
        let dn = UnsafePointer<Float>((b + l.dense).assumingMemoryBound(to: Float.self))
        for k in 0..<nnz where !dn[k].isFinite {
            throw bad("dense", "row \(k / max(cols, 1)): value not finite")
        }
        return Dataset(
            rows: rows, cols: cols, labelKind: kind, source: name, storage: storage, labels: labels, dense: dn,
            labelFacts: facts)
    }
}

/// ("dir", "file") of a path; "." for a bare name.
func splitPath(_ path: String) -> (String, String) {
    guard let slash = path.lastIndex(of: "/") else { return (".", path) }
    let dir = String(path[..<slash])
    return (dir.isEmpty ? "/" : dir, String(path[path.index(after: slash)...]))
}

/// pwrite(2) of all `n` bytes at `offset`, retrying short writes and EINTR.
private func writeAll(_ fd: Int32, _ p: UnsafeRawPointer, _ n: Int, at offset: Int, name: String) throws(LapwingError) {
    var done = 0
    while done < n {
        let w = try syscall("write", object: name) {
            pwrite(fd, p + done, min(n - done, 1 << 30), off_t(offset + done))
        }
        done += w
    }
}
