import LapwingCore
import Testing

@testable import LapwingData

/// One malformed (or tricky) input and what the reader must say about it.
struct BadInput: CustomTestStringConvertible, Sendable {
    enum Format: Sendable { case libsvm(declared: Int?), csv, idxImages, idxLabels }
    var what: String
    var format: Format
    var file: String
    var bytes: [UInt8]
    var code: LapwingError.Code
    /// Expected in the message, after the file's path (so it starts with ":line" or ": byte");
    /// "{size}" stands for the file's size.
    var message: String

    var testDescription: String { what }

    init(_ what: String, _ format: Format, _ file: String, _ bytes: [UInt8], _ code: LapwingError.Code, _ message: String) {
        self.what = what
        self.format = format
        self.file = file
        self.bytes = bytes
        self.code = code
        self.message = message
    }

    init(_ what: String, _ format: Format, _ file: String, _ text: String, _ code: LapwingError.Code, _ message: String) {
        self.init(what, format, file, Array(text.utf8), code, message)
    }
}

let goodImages = idxImages(count: 2, rows: 2, cols: 2)
let goodLabels = idxLabels([1, 0])

let corpus: [BadInput] = [
    // LIBSVM
    .init("svm index 0", .libsvm(declared: nil), "data.svm", "1 1:1\n1 2:1\n1 3:1\n1 4:1\n1 5:1\n1 6:1\n1 7:1\n1 8:1\n1 9:1\n1 1:1\n1 2:2\n-1 0:1\n", .invalidData, ":12: feature index 0 (indices start at 1)"),
    .init("svm out of order", .libsvm(declared: nil), "data.svm", "1 9:1 5:2\n", .invalidData, ":1: feature indices not increasing (5 after 9)"),
    .init("svm duplicate", .libsvm(declared: nil), "data.svm", "1 1:1\n-1 5:1 5:2\n", .invalidData, ":2: duplicate feature index 5"),
    .init("svm beyond declared", .libsvm(declared: 800), "data.svm", "# c\n\n1 900:1\n", .invalidData, ":3: feature index 900 beyond the declared feature count 800"),
    .init("svm non-numeric value", .libsvm(declared: nil), "data.svm", "1 1:1\n1 1:1\n1 1:1\n1 3:abc\n", .invalidData, ":4: value for feature 3: a 3-byte token that is not a number"),
    .init("svm non-numeric label", .libsvm(declared: nil), "data.svm", "1 1:1\nx 1:2\n", .invalidData, ":2: label: a 1-byte token that is not a number"),
    .init("svm NaN", .libsvm(declared: nil), "data.svm", "1 1:1 2:nan\n", .invalidData, ":1: value for feature 2: NaN/Inf not allowed"),
    .init("svm Inf", .libsvm(declared: nil), "data.svm", "1 1:-inf\n", .invalidData, ":1: value for feature 1: NaN/Inf not allowed"),
    .init("svm NaN label", .libsvm(declared: nil), "data.svm", "NaN 1:1\n", .invalidData, ":1: label: NaN/Inf not allowed"),
    .init("svm overflow", .libsvm(declared: nil), "data.svm", "1 1:1e40\n", .invalidData, ":1: value for feature 1 out of Float range"),
    .init("svm malformed token", .libsvm(declared: nil), "data.svm", "1 1:1\r\n1 7\r\n", .invalidData, ":2: malformed feature: a 1-byte token (expected index:value)"),
    .init("svm empty", .libsvm(declared: nil), "data.svm", "", .invalidData, ": empty file (no examples)"),
    .init("svm blank only", .libsvm(declared: nil), "data.svm", " \n\n\t\r\n", .invalidData, ": empty file (no examples)"),
    .init("svm comments only", .libsvm(declared: nil), "data.svm", "# one\n  # two\n", .invalidData, ": no examples (only comments and blank lines)"),
    .init("svm truncated gzip", .libsvm(declared: nil), "data.svm.gz", Array(gzip(Array(String(repeating: "1 1:0.5 2:0.25\n", count: 200).utf8)).dropLast(20)), .invalidData, ": byte {size}: truncated gzip file"),
    .init("svm corrupt gzip", .libsvm(declared: nil), "data.svm.gz", [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff], .invalidData, ": byte 11: corrupt gzip data"),
    // CSV
    .init("csv ragged", .csv, "file.csv", "1,2,3\n1,2,3\n1,2,3\n1,2,3\n1,2\n", .invalidData, ":5: 2 fields, expected 3"),
    .init("csv ragged long", .csv, "file.csv", "y,a\n1,2\n1,2,3,4\n", .invalidData, ":3: 4 fields, expected 2"),
    .init("csv non-numeric", .csv, "file.csv", "1,2,3\n1,x,3\n", .invalidData, ":2: field 2: a 1-byte token that is not a number"),
    .init("csv non-numeric with header", .csv, "file.csv", "y,p1,p2\n1,2,3\n1,2,?\n", .invalidData, ":3: field 3: a 1-byte token that is not a number"),
    .init("csv non-numeric label", .csv, "file.csv", "y,p1\n1,2\nq,3\n", .invalidData, ":3: label (field 1): a 1-byte token that is not a number"),
    .init("csv empty field", .csv, "file.csv", "1,2\n1,\n", .invalidData, ":2: field 2 is empty"),
    .init("csv NaN", .csv, "file.csv", "1,NaN\n", .invalidData, ":1: field 2: NaN/Inf not allowed"),
    .init("csv Inf", .csv, "file.csv", "1,2\r\n1,inf\r\n", .invalidData, ":2: field 2: NaN/Inf not allowed"),
    .init("csv empty", .csv, "file.csv", "", .invalidData, ": empty file (no examples)"),
    .init("csv header only", .csv, "file.csv", "label,a,b\r\n", .invalidData, ": no examples (only a header)"),
    .init("csv unterminated quote", .csv, "file.csv", "1,\"2\n", .invalidData, ":1: unterminated quoted field"),
    // IDX
    .init("idx bad magic", .idxImages, "train-images-idx3-ubyte", [0x12, 0x34, 8, 3] + Array(goodImages.dropFirst(4)), .invalidData, ": byte 0: bad magic (expected 0x00000803 for an IDX images file)"),
    .init("idx float type", .idxImages, "train-images-idx3-ubyte", [0, 0, 0x0D, 3] + Array(goodImages.dropFirst(4)), .unsupported, ": byte 2: data type 0D (float) not supported"),
    .init("idx labels as images", .idxImages, "train-images-idx3-ubyte", goodLabels, .invalidData, ": byte 3: 1 dimensions (magic 0x00000801), expected 0x00000803"),
    .init("idx images truncated", .idxImages, "train-images-idx3-ubyte", Array(goodImages.dropLast(3)), .invalidData, ": byte 21: truncated file: image data (2 images of 2x2) needs 8 bytes after the 16-byte header, only 5 present"),
    .init("idx header truncated", .idxImages, "train-images-idx3-ubyte", Array(goodImages.prefix(10)), .invalidData, ": byte 10: file ends in the header (expected 16 header bytes, got 10)"),
    .init("idx images trailing", .idxImages, "train-images-idx3-ubyte", goodImages + [1, 2], .invalidData, ": byte 24: 2 unexpected bytes"),
    .init("idx labels truncated", .idxLabels, "train-labels-idx1-ubyte", Array(goodLabels.dropLast(1)), .invalidData, ": byte 9: truncated file: label data (2 labels) needs 2 bytes after the 8-byte header, only 1 present"),
    .init("idx labels truncated gzip", .idxLabels, "train-labels-idx1-ubyte.gz", Array(gzip(goodLabels).dropLast(9)), .invalidData, ": byte {size}: truncated gzip file (the compressed data ends after "),
    .init("idx labels bad magic", .idxLabels, "train-labels-idx1-ubyte", [1, 0, 8, 1, 0, 0, 0, 2, 1, 0], .invalidData, ": byte 0: bad magic (expected 0x00000801 for an IDX labels file)"),
    .init("idx labels empty", .idxLabels, "train-labels-idx1-ubyte", [], .invalidData, ": byte 0: file ends in the IDX magic number"),
]

@Suite struct MalformedInputTests {
    @Test(arguments: corpus)
    func refused(_ c: BadInput) {
        let dir = TempDir(c.what)
        defer { dir.remove() }
        let path = dir.write(c.file, c.bytes)
        let err = thrownError { () throws(LapwingError) -> Dataset in
            switch c.format {
            case .libsvm(let declared):
                return try LIBSVMReader.load(path: path, options: LIBSVMOptions(featureCount: declared))
            case .csv:
                return try CSVReader.load(path: path)
            case .idxImages:
                return try IDXReader.load(images: path, labels: dir.write("labels", goodLabels))
            case .idxLabels:
                return try IDXReader.load(images: dir.write("images", goodImages), labels: path)
            }
        }
        #expect(err?.code == c.code, "\(c.what): \(String(describing: err))")
        let want = path + c.message.replacing("{size}", with: "\(c.bytes.count)")
        #expect(err?.message.contains(want) == true, "\(c.what): got \(String(describing: err))")
    }

    @Test func idxCountMismatch() {
        let dir = TempDir()
        defer { dir.remove() }
        let img = dir.write("train-images-idx3-ubyte.gz", gzip(idxImages(count: 3, rows: 1, cols: 2)))
        let lab = dir.write("train-labels-idx1-ubyte", idxLabels([1, 2]))
        let e = thrownError { () throws(LapwingError) in try IDXReader.load(images: img, labels: lab) }
        #expect(e?.code == .invalidData)
        #expect(e?.message == "\(img): byte 4: image count 3 but labels file has 2")
    }

    @Test func missingFiles() {
        let dir = TempDir()
        defer { dir.remove() }
        let p = dir.path + "/absent.svm"
        let errors = [
            thrownError { () throws(LapwingError) in try LIBSVMReader.load(path: p) },
            thrownError { () throws(LapwingError) in try CSVReader.load(path: p) },
            thrownError { () throws(LapwingError) in try IDXReader.load(images: p, labels: p) },
            thrownError { () throws(LapwingError) in try Dataset.map(path: p) },
        ]
        for e in errors {
            #expect(e?.code == .notFound)
            #expect(e?.message.contains(p) == true)
        }
    }

    @Test func crlfIsValid() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let svm = try LIBSVMReader.load(path: dir.write("c.svm", "+1 1:1 2:2\r\n-1 2:3\r\n"))
        #expect(svm.rows == 2 && Array(svm.values) == [1, 2, 3])
        let csv = try CSVReader.load(path: dir.write("c.csv", "1,2\r\n0,3\r\n"))
        #expect(csv.rows == 2 && Array(csv.dense) == [2, 3])
    }
}
