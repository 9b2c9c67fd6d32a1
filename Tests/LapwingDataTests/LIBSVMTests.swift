import LapwingCore
import Testing

@testable import LapwingData

@Suite struct LIBSVMTests {
    @Test func parsesSmallFileExactly() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let p = dir.write(
            "small.svm",
            """
            # a comment line
            +1 1:0.5 3:-2 qid:7 4:1e-1   # trailing comment
            -1\t2:3\t\t5:0.25

            -1
            +1 5:4
            """)
        let d = try LIBSVMReader.load(path: p)
        #expect(d.rows == 4)
        #expect(d.cols == 5)
        #expect(d.isSparse)
        #expect(d.nnz == 6)
        #expect(d.labelKind == .binary)
        #expect(Array(d.labels) == [1, -1, -1, 1])
        #expect(Array(d.rowStart) == [0, 3, 5, 5, 6])
        #expect(Array(d.indices) == [0, 2, 3, 1, 4, 4])
        #expect(Array(d.values) == [0.5, -2, 0.1, 3, 0.25, 4])
        #expect(Array(d.sparseRow(1).indices) == [1, 4])
        #expect(d.sparseRow(2).indices.isEmpty)
        #expect(d.source == p)
    }

    @Test func crlfGzipAndDeclaredFeatureCount() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let text = "0 1:1 2:2\r\n1 3:3\r\n0 2:5\r\n"
        let p = dir.write("crlf.svm.gz", gzip(Array(text.utf8)))
        let d = try LIBSVMReader.load(path: p, options: LIBSVMOptions(featureCount: 10))
        #expect(d.rows == 3 && d.cols == 10)
        #expect(d.labelKind == .binary)
        #expect(Array(d.labels) == [-1, 1, -1])  // 0/1 stored as ±1
        #expect(Array(d.indices) == [0, 1, 2, 1])
        #expect(Array(d.values) == [1, 2, 3, 5])
    }

    @Test func labelKinds() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let multi = dir.write("m.svm", "0 1:1\n2 1:1\n1 1:1\n")
        #expect(try LIBSVMReader.load(path: multi).labelKind == .multiclass(classes: 3))
        let more = LIBSVMOptions(labels: LabelOptions(minClasses: 10))
        #expect(try LIBSVMReader.load(path: multi, options: more).labelKind == .multiclass(classes: 10))
        let real = dir.write("r.svm", "0.5 1:1\n-2 1:1\n")
        let r = try LIBSVMReader.load(path: real)
        #expect(r.labelKind == .real && Array(r.labels) == [0.5, -2])
        let forced = LIBSVMOptions(labels: LabelOptions(kind: .multiclass))
        let bin = dir.write("b.svm", "0 1:1\n1 1:1\n")
        #expect(try LIBSVMReader.load(path: bin, options: forced).labelKind == .multiclass(classes: 2))
        #expect(try LIBSVMReader.load(path: bin).labelKind == .binary)
        let err = thrownError { () throws(LapwingError) in
            try LIBSVMReader.load(path: real, options: LIBSVMOptions(labels: LabelOptions(kind: .binary)))
        }
        #expect(err?.code == .invalidData)
        #expect(err?.message.contains("r.svm:1: a label that is neither -1, 0 nor 1: binary labels are -1/+1 or 0/1") == true)
    }

    @Test func numbersRoundCorrectly() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let toks = ["0.1", "3.14159265358979", "1e-30", "-7.5e+3", "123456789012345678901234", "0x1p-2", ".5", "5."]
        let text = "1 " + toks.enumerated().map { "\($0.offset + 1):\($0.element)" }.joined(separator: " ") + "\n"
        let d = try LIBSVMReader.load(path: dir.write("n.svm", text))
        let want: [Float] = [0.1, 3.14159265358979, 1e-30, -7.5e3, Float("123456789012345678901234")!, 0.25, 0.5, 5]
        #expect(Array(d.values) == want)
    }

    @Test func heartScale() throws {
        let d = try LIBSVMReader.load(path: "/usr/share/doc/liblinear-tools/examples/heart_scale")
        #expect(d.rows == 270)
        #expect(d.cols == 13)
        #expect(d.labelKind == .binary)
        #expect(d.labels.allSatisfy { $0 == 1 || $0 == -1 })
        #expect(d.label(0) == 1 && d.label(1) == -1)
        #expect(d.sparseRow(0).values.first == 0.708333)
    }
}
