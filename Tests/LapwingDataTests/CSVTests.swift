import LapwingCore
import Testing

@testable import LapwingData

@Suite struct CSVTests {
    @Test func headerDetectedAndLabelByName() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let p = dir.write("h.csv", "a, y ,\"b\"\r\n1,0,2\r\n\r\n3.5,1,-4\r\n")
        let d = try CSVReader.load(path: p, options: CSVOptions(labelColumn: .name("y")))
        #expect(d.rows == 2 && d.cols == 2 && !d.isSparse)
        #expect(Array(d.dense) == [1, 2, 3.5, -4])
        #expect(Array(d.labels) == [-1, 1])
        #expect(d.labelKind == .binary)
        #expect(Array(d.denseRow(1)) == [3.5, -4])
    }

    @Test func noHeaderLabelFirstGzipAndTabs() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let p = dir.write("t.tsv.gz", gzip(Array("2\t0.5\t1\n0\t1.5\t2\n1\t2.5\t3\n".utf8)))
        let d = try CSVReader.load(path: p, options: CSVOptions(delimiter: UInt8(ascii: "\t")))
        #expect(d.rows == 3 && d.cols == 2)
        #expect(d.labelKind == .multiclass(classes: 3))
        #expect(Array(d.labels) == [2, 0, 1])
        #expect(Array(d.dense) == [0.5, 1, 1.5, 2, 2.5, 3])
        let last = try CSVReader.load(
            path: p, options: CSVOptions(labelColumn: .index(-1), delimiter: UInt8(ascii: "\t")))
        #expect(Array(last.labels) == [1, 2, 3])
        #expect(Array(last.dense) == [2, 0.5, 0, 1.5, 1, 2.5])
    }

    @Test func labelColumnErrors() {
        let dir = TempDir()
        defer { dir.remove() }
        let p = dir.write("l.csv", "1,2,3\n4,5,6\n")
        let e1 = thrownError { () throws(LapwingError) in try CSVReader.load(path: p, options: CSVOptions(labelColumn: .index(3))) }
        #expect(e1?.code == .invalidArgument)
        #expect(e1?.message.contains("l.csv:1: label column 3 out of range (the file has 3 columns)") == true)
        let e2 = thrownError { () throws(LapwingError) in try CSVReader.load(path: p, options: CSVOptions(labelColumn: .name("y"))) }
        #expect(e2?.code == .invalidArgument)
        #expect(e2?.message.contains("no header") == true)
    }
}
