import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// Reads IDX files (the MNIST family: an images file and a labels file, plain or gzipped) into
/// dense data sets with pixels scaled to [0, 1]. Errors name the file and the byte offset.
public enum IDXReader {
    /// Magic of an unsigned-byte image file with 3 dimensions (count, rows, columns).
    static let imagesMagic: UInt32 = 0x0000_0803
    /// Magic of an unsigned-byte label file (one dimension: count).
    static let labelsMagic: UInt32 = 0x0000_0801

    /// Loads an images file and its labels file, each of at most `maxBytes` (nil: `ReadLimit.defaultBytes`).
    public static func load(
        images: String, labels: String, options: LabelOptions = LabelOptions(), maxBytes: Int? = nil
    ) throws(LapwingError) -> Dataset {
        let img = try InputBytes.open(path: images, limit: maxBytes)
        let lab = try InputBytes.open(path: labels, limit: maxBytes)
        return try parse(images: img, labels: lab, options: options)
    }

    /// Loads from two open descriptors (read from their current offsets; they stay open).
    public static func load(
        imagesFD: Int32, imagesName: String, labelsFD: Int32, labelsName: String,
        options: LabelOptions = LabelOptions(), maxBytes: Int? = nil
    ) throws(LapwingError) -> Dataset {
        let img = try InputBytes.read(fd: imagesFD, name: imagesName, limit: maxBytes)
        let lab = try InputBytes.read(fd: labelsFD, name: labelsName, limit: maxBytes)
        return try parse(images: img, labels: lab, options: options)
    }

    /// The four files of an MNIST-style directory, each plain or with `.gz`.
    static let directoryFiles = [
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte",
    ]

    /// Loads `train-*` and `t10k-*` from an MNIST-style directory; the test set gets the training
    /// set's class count (or more, and then both get the larger one).
    public static func loadDirectory(_ dir: String, options: LabelOptions = LabelOptions(), maxBytes: Int? = nil)
        throws(LapwingError) -> (train: Dataset, test: Dataset)
    {
        let found = try directoryPaths(dir)
        return try loadPair(
            train: load(images: found[0], labels: found[1], options: options, maxBytes: maxBytes),
            test: { (kind: LabelKind) throws(LapwingError) -> Dataset in
                try load(images: found[2], labels: found[3], options: LabelOptions.matching(kind), maxBytes: maxBytes)
            })
    }

    /// The four files of an MNIST-style directory, in the order train images, train labels,
    /// test images, test labels (each plain or `.gz`, also the `.idx3-ubyte` spelling).
    public static func directoryPaths(_ dir: String) throws(LapwingError) -> [String] {
        var st = stat()
        if stat(dir, &st) != 0 {
            throw LapwingError.system("stat", errno: errno, object: dir)
        }
        if st.st_mode & S_IFMT != S_IFDIR {
            throw LapwingError(.invalidArgument, "\(dir): not a directory (expected an MNIST-style directory)")
        }
        var found: [String] = []
        var missing: [String] = []
        for f in directoryFiles {
            // Also the ".idx3-ubyte" spelling some mirrors use.
            let parts = f.split(separator: "-")
            let dotted = "\(parts[0])-\(parts[1]).\(parts[2])-\(parts[3])"
            let candidates = [f, f + ".gz", dotted, dotted + ".gz"].map { dir + "/" + $0 }
            if let hit = candidates.first(where: { access($0, F_OK) == 0 }) {
                found.append(hit)
            } else {
                missing.append(f + "[.gz]")
            }
        }
        if !missing.isEmpty {
            throw LapwingError(.notFound, "\(dir): missing \(missing.joined(separator: ", "))")
        }
        return found
    }

    /// A training set and the test set loaded to match it (same class count, same pixels).
    static func loadPair(train: Dataset, test makeTest: (LabelKind) throws(LapwingError) -> Dataset)
        throws(LapwingError) -> (train: Dataset, test: Dataset)
    {
        var train = train
        var test = try makeTest(train.labelKind)
        if test.cols != train.cols {
            throw LapwingError(
                .invalidData, "\(test.source): \(test.cols) features per image but the training images have \(train.cols)")
        }
        if case .multiclass(let a) = train.labelKind, case .multiclass(let b) = test.labelKind, a != b {
            let k = LabelKind.multiclass(classes: max(a, b))
            train = train.reshaped(labelKind: k)
            test = test.reshaped(labelKind: k)
        }
        return (train, test)
    }

    @inline(__always)
    static func be32(_ p: UnsafePointer<UInt8>) -> UInt32 {
        UInt32(p[0]) << 24 | UInt32(p[1]) << 16 | UInt32(p[2]) << 8 | UInt32(p[3])
    }

    static func hex(_ v: UInt32) -> String {
        let s = String(v, radix: 16, uppercase: true)
        return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
    }

    static func typeName(_ t: UInt8) -> String {
        switch t {
        case 0x08: "unsigned byte"
        case 0x09: "signed byte"
        case 0x0B: "short"
        case 0x0C: "int"
        case 0x0D: "float"
        case 0x0E: "double"
        default: "unknown"
        }
    }

    /// Checks an IDX header; returns the dimensions.
    static func header(_ f: borrowing InputBytes, what: String, expectedDims: ClosedRange<Int>, magic: UInt32)
        throws(LapwingError) -> [Int]
    {
        let name = f.name
        if f.count < 4 {
            throw LapwingError(
                .invalidData, "\(name): byte \(f.count): file ends in the IDX magic number (\(f.count) of 4 bytes)")
        }
        let b = f.base
        let m = be32(b)
        if b[0] != 0 || b[1] != 0 {
            // The bytes found are not quoted: they may be anything's content.
            throw LapwingError(
                .invalidData, "\(name): byte 0: bad magic (expected \(hex(magic)) for an IDX \(what) file)")
        }
        if b[2] != 0x08 {
            throw LapwingError(
                .unsupported,
                "\(name): byte 2: data type \(hex(UInt32(b[2])).suffix(2)) (\(typeName(b[2]))) not supported, only 08 (unsigned byte)"
            )
        }
        let nd = Int(b[3])
        if !expectedDims.contains(nd) {
            throw LapwingError(
                .invalidData,
                "\(name): byte 3: \(nd) dimensions (magic \(hex(m))), expected \(hex(magic)) for an IDX \(what) file"
            )
        }
        let headerLen = 4 + 4 * nd
        if f.count < headerLen {
            throw LapwingError(
                .invalidData,
                "\(name): byte \(f.count): file ends in the header (expected \(headerLen) header bytes, got \(f.count))")
        }
        var dims: [Int] = []
        for k in 0..<nd {
            let d = Int(be32(b + 4 + 4 * k))
            if k > 0 && d == 0 {
                throw LapwingError(.invalidData, "\(name): byte \(4 + 4 * k): dimension \(k) is 0")
            }
            dims.append(d)
        }
        return dims
    }

    static func parse(images img: borrowing InputBytes, labels lab: borrowing InputBytes, options: LabelOptions)
        throws(LapwingError) -> Dataset
    {
        let idims = try header(img, what: "images", expectedDims: 2...4, magic: imagesMagic)
        let ldims = try header(lab, what: "labels", expectedDims: 1...1, magic: labelsMagic)
        let count = idims[0]
        var features = 1
        for d in idims.dropFirst() {
            let (p, o) = features.multipliedReportingOverflow(by: d)
            if o || p > Int(Int32.max) {
                throw LapwingError(.invalidData, "\(img.name): byte 8: image dimensions \(idims.dropFirst()) too large")
            }
            features = p
        }
        if count != ldims[0] {
            throw LapwingError(
                .invalidData, "\(img.name): byte 4: image count \(count) but labels file has \(ldims[0])")
        }
        if count == 0 {
            throw LapwingError(.invalidData, "\(img.name): byte 4: no images (count 0)")
        }
        let ih = 4 + 4 * idims.count
        let lh = 4 + 4 * ldims.count
        let (ibytes, o1) = count.multipliedReportingOverflow(by: features)
        if o1 || ibytes > Int.max - ih {
            throw LapwingError(.invalidData, "\(img.name): byte 4: \(count) images of \(features) bytes is too large")
        }
        try checkSize(img, header: ih, expected: ibytes, what: "image data (\(count) images of \(idims.dropFirst().map(String.init).joined(separator: "x")))")
        try checkSize(lab, header: lh, expected: count, what: "label data (\(count) labels)")

        let lp = RawVec<Float>(capacity: count)
        let dp = RawVec<Float>(capacity: ibytes)
        let lptr = lp.ptr
        let dptr = dp.ptr
        let src = img.base + ih
        // A table makes the scaling exact and fast: pixel / 255 rounded once.
        var table = [Float](repeating: 0, count: 256)
        for v in 0..<256 { table[v] = Float(v) / 255.0 }
        table.withUnsafeBufferPointer { t in
            for k in 0..<ibytes { dptr[k] = t[Int(src[k])] }
        }
        let lsrc = lab.base + lh
        for k in 0..<count { lptr[k] = Float(lsrc[k]) }
        let (kind, facts) = try finalizeLabels(lptr, count: count, options: options, name: lab.name) { i in ": byte \(lh + i)" }
        let l = lp.take()
        let d = dp.take()
        let storage = DatasetStorage(.heap([UnsafeMutableRawPointer(l), UnsafeMutableRawPointer(d)]))
        return Dataset(
            rows: count, cols: features, labelKind: kind, source: img.name, storage: storage, labels: l, dense: d,
            labelFacts: facts)
    }

    static func checkSize(_ f: borrowing InputBytes, header: Int, expected: Int, what: String) throws(LapwingError) {
        let have = f.count - header
        if have < expected {
            throw LapwingError(
                .invalidData,
                "\(f.name): byte \(f.count): truncated file: \(what) needs \(expected) bytes after the \(header)-byte header, only \(have) present"
            )
        }
        if have > expected {
            throw LapwingError(
                .invalidData,
                "\(f.name): byte \(header + expected): \(have - expected) unexpected bytes after the \(what)")
        }
    }
}
