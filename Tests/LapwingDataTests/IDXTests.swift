import LapwingCore
import Testing

@testable import LapwingData

/// Bytes of an IDX images file (unsigned bytes) with the given dimensions.
func idxImages(count: Int, rows: Int, cols: Int, pixels: [UInt8]? = nil) -> [UInt8] {
    var b: [UInt8] = [0, 0, 8, 3]
    for d in [count, rows, cols] { b += be32(d) }
    b += pixels ?? (0..<(count * rows * cols)).map { UInt8($0 % 256) }
    return b
}

func idxLabels(_ labels: [UInt8], count: Int? = nil) -> [UInt8] {
    [0, 0, 8, 1] + be32(count ?? labels.count) + labels
}

func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 255), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }

@Suite struct IDXTests {
    @Test func smallFilesPlainAndGzip() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let img = dir.write("img", idxImages(count: 3, rows: 2, cols: 2, pixels: [0, 255, 51, 102, 1, 2, 3, 4, 5, 6, 7, 8]))
        let lab = dir.write("lab.gz", gzip(idxLabels([3, 0, 1])))
        let d = try IDXReader.load(images: img, labels: lab)
        #expect(d.rows == 3 && d.cols == 4 && !d.isSparse)
        #expect(d.labelKind == .multiclass(classes: 4))
        #expect(Array(d.labels) == [3, 0, 1])
        #expect(Array(d.denseRow(0)) == [0, 1, 0.2, 0.4])
        #expect(d.denseRow(2)[3] == Float(8) / 255)
    }

    @Test func fashionMNIST() throws {
        let (train, test) = try IDXReader.loadDirectory("/usr/share/datasets/fashion-mnist")
        #expect(train.rows == 60000 && train.cols == 784)
        #expect(test.rows == 10000 && test.cols == 784)
        #expect(train.labelKind == .multiclass(classes: 10))
        #expect(test.labelKind == .multiclass(classes: 10))
        #expect(train.label(0) == 9)
        var lo: Float = 1, hi: Float = 0
        train.withUnsafeDense { f, _ in
            for v in f {
                lo = min(lo, v)
                hi = max(hi, v)
            }
        }
        #expect(lo == 0 && hi == 1)
        #expect(Set(test.labels).count == 10)
    }

    @Test func directoryNamesWhatIsMissing() {
        let dir = TempDir()
        defer { dir.remove() }
        dir.write("train-images-idx3-ubyte", idxImages(count: 1, rows: 1, cols: 1))
        dir.write("t10k-labels-idx1-ubyte.gz", gzip(idxLabels([1])))
        let e = thrownError { () throws(LapwingError) in try IDXReader.loadDirectory(dir.path) }
        #expect(e?.code == .notFound)
        #expect(e?.message == "\(dir.path): missing train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz]")
        let e2 = thrownError { () throws(LapwingError) in try IDXReader.loadDirectory(dir.path + "/nope") }
        #expect(e2?.code == .notFound)
        #expect(e2?.message.contains("/nope") == true)
    }
}
