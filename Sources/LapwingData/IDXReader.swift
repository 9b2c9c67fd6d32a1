import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// The IDX format of the MNIST family (plain or gzipped): a magic word (two zero bytes, a
/// data-type byte, the number of dimensions), big-endian 32-bit dimensions, then the data.
/// Images become dense rows scaled to [0, 1]; labels become classes.
public enum IDXReader {
    /// Loads an images file and its labels file into one dense data set.
    public static func load(images: String, labels: String, labelOptions: LabelOptions = LabelOptions())
        throws(LapwingError) -> Dataset
    {
        let img = try InputFile(images)
        let (imageDims, imageData) = try header(img, expectDims: nil)
        guard imageDims.count >= 2 else {
            throw LapwingError(
                .invalidData, "\(images): byte 3: \(imageDims.count) dimension(s), an images file needs at least 2")
        }
        let count = imageDims[0]
        let cols = imageDims.dropFirst().reduce(1, *)
        let lab = try InputFile(labels)
        let (labelDims, labelData) = try header(lab, expectDims: 1)
        guard labelDims[0] == count else {
            throw LapwingError(
                .invalidData, "\(labels): byte 4: \(labelDims[0]) labels but \(images) has \(count) images")
        }
        var x = [Float](repeating: 0, count: count * cols)
        let src = img.bytes.baseAddress! + imageData
        let scale: Float = 1 / 255
        x.withUnsafeMutableBufferPointer { dst in
            for k in 0..<(count * cols) { dst[k] = Float(src[k]) * scale }
        }
        var y = (0..<count).map { Float(lab.bytes[labelData + $0]) }
        let kind = labelOptions.resolve(&y)
        return Dataset(dense: x, cols: cols, labels: y, labelKind: kind, source: images)
    }

    /// Loads the standard four files of a directory: train-* and t10k-* images and labels,
    /// each optionally ending in .gz.
    public static func loadDirectory(_ dir: String) throws(LapwingError) -> (train: Dataset, test: Dataset) {
        func find(_ stem: String) throws(LapwingError) -> String {
            for name in [stem, stem + ".gz"] where access(dir + "/" + name, R_OK) == 0 { return dir + "/" + name }
            throw LapwingError(
                .notFound, "\(dir): no \(stem) or \(stem).gz",
                detail: "an IDX directory holds train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each optionally .gz)")
        }
        var isDir = stat()
        guard stat(dir, &isDir) == 0 else { throw LapwingError.system("stat", errno: errno, object: dir) }
        guard (isDir.st_mode & S_IFMT) == S_IFDIR else {
            throw LapwingError(.invalidArgument, "\(dir): not a directory (idx: takes the directory of the IDX files)")
        }
        let train = try load(images: find("train-images-idx3-ubyte"), labels: find("train-labels-idx1-ubyte"))
        let test = try load(
            images: find("t10k-images-idx3-ubyte"), labels: find("t10k-labels-idx1-ubyte"),
            labelOptions: LabelOptions(minimumClasses: train.classes ?? 0))
        guard test.cols == train.cols else {
            throw LapwingError(.invalidData, "\(dir): test images have \(test.cols) pixels, training images \(train.cols)")
        }
        if let k = test.classes, let t = train.classes, k > t {
            return (train.widened(to: train.cols, labelKind: .multiclass(classes: k)), test)
        }
        return (train, test)
    }

    /// Checks the magic and dimensions; returns them and the byte offset where data starts.
    static func header(_ f: borrowing InputFile, expectDims: Int?) throws(LapwingError) -> ([Int], Int) {
        let b = f.bytes
        let path = f.path
        guard b.count > 0 else { throw LapwingError(.invalidData, "\(path): empty file (no IDX header)") }
        guard b.count >= 4 else {
            throw LapwingError(.invalidData, "\(path): byte \(b.count): truncated in the 4-byte magic number")
        }
        guard b[0] == 0, b[1] == 0 else {
            throw LapwingError(
                .invalidData,
                "\(path): byte 0: bad magic number \(hex(b[0]))\(hex(b[1]))\(hex(b[2]))\(hex(b[3])) (an IDX file starts with two zero bytes)")
        }
        guard b[2] == 0x08 else {
            throw LapwingError(
                .unsupported, "\(path): byte 2: data type 0x\(hex(b[2])) is not supported (only unsigned bytes, 0x08)")
        }
        let ndim = Int(b[3])
        guard ndim >= 1 else { throw LapwingError(.invalidData, "\(path): byte 3: zero dimensions") }
        if let expectDims, ndim != expectDims {
            throw LapwingError(
                .invalidData, "\(path): byte 3: \(ndim) dimensions, a labels file has \(expectDims)")
        }
        let dataStart = 4 + 4 * ndim
        guard b.count >= dataStart else {
            throw LapwingError(
                .invalidData, "\(path): byte \(b.count): truncated in the dimensions (header needs \(dataStart) bytes)")
        }
        var dims: [Int] = []
        var total = 1
        for d in 0..<ndim {
            let o = 4 + 4 * d
            let v = Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3])
            guard v > 0 else { throw LapwingError(.invalidData, "\(path): byte \(o): dimension \(d) is zero") }
            dims.append(v)
            total *= v
            guard total < 1 << 40 else { throw LapwingError(.invalidData, "\(path): byte \(o): dimensions too large") }
        }
        guard b.count >= dataStart + total else {
            throw LapwingError(
                .invalidData,
                "\(path): byte \(b.count): truncated: the header promises \(total) data bytes after byte \(dataStart), the file has \(b.count - dataStart)")
        }
        guard b.count == dataStart + total else {
            throw LapwingError(
                .invalidData,
                "\(path): byte \(dataStart + total): \(b.count - dataStart - total) bytes after the data the header describes")
        }
        return (dims, dataStart)
    }

    static func hex(_ v: UInt8) -> String {
        let s = String(v, radix: 16)
        return s.count == 1 ? "0" + s : s
    }
}
