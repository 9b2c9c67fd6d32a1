import LapwingCore
import Testing

@testable import LapwingData

@Suite struct DatasetTests {
    @Test func gatherSparse() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let d = try LIBSVMReader.load(path: dir.write("g.svm", "1 1:1 3:3\n-1 2:2\n1\n-1 1:4 2:5 3:6\n"))
        var buf = BatchBuffer(cols: d.cols, sparse: true, capacity: 4)
        d.gather(rows: [3, 0, 2], into: &buf)
        buf.withBatch { b in
            #expect(b.count == 3 && b.cols == 3 && b.isSparse)
            #expect(Array(UnsafeBufferPointer(start: b.labels, count: 3)) == [-1, 1, 1])
            guard case .sparse(let off, let idx, let val) = b.rows else {
                Issue.record("not sparse")
                return
            }
            #expect(Array(UnsafeBufferPointer(start: off, count: 4)) == [0, 3, 5, 5])
            #expect(Array(UnsafeBufferPointer(start: idx, count: 5)) == [0, 1, 2, 0, 2])
            #expect(Array(UnsafeBufferPointer(start: val, count: 5)) == [4, 5, 6, 1, 3])
        }
        // Gathering again replaces the contents.
        d.gather(rows: 1...1, into: &buf)
        buf.withBatch { b in
            #expect(b.count == 1)
            #expect(b.labels[0] == -1)
        }
    }

    @Test func gatherDense() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let d = try CSVReader.load(path: dir.write("g.csv", "0,1,2\n1,3,4\n2,5,6\n"))
        var buf = BatchBuffer(cols: 2, sparse: false, capacity: 2)
        d.gather(rows: [2, 0], into: &buf)
        buf.withBatch { b in
            #expect(b.count == 2 && !b.isSparse)
            guard case .dense(let x) = b.rows else {
                Issue.record("not dense")
                return
            }
            #expect(Array(UnsafeBufferPointer(start: x, count: 4)) == [5, 6, 1, 2])
            #expect(Array(UnsafeBufferPointer(start: b.labels, count: 2)) == [2, 0])
        }
    }
}

@Suite struct DatasetFileTests {
    static func same(_ a: Dataset, _ b: Dataset) -> Bool {
        a.rows == b.rows && a.cols == b.cols && a.nnz == b.nnz && a.isSparse == b.isSparse
            && a.labelKind == b.labelKind && Array(a.labels) == Array(b.labels) && Array(a.dense) == Array(b.dense)
            && Array(a.rowStart) == Array(b.rowStart) && Array(a.indices) == Array(b.indices)
            && Array(a.values) == Array(b.values)
    }

    @Test func roundTripSparseAndDense() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let s = try LIBSVMReader.load(path: dir.write("a.svm", "2 1:1 3:3\n0 2:2\n1\n"))
        try s.write(to: dir.path + "/a.lwd")
        let ms = try Dataset.map(path: dir.path + "/a.lwd")
        #expect(Self.same(s, ms))
        #expect(ms.labelKind == .multiclass(classes: 3))
        #expect(ms.source == dir.path + "/a.lwd")
        let d = try CSVReader.load(path: dir.write("a.csv", "y,a,b\n0.5,1,2\n-1.5,3,4\n"))
        try d.write(to: dir.path + "/b.lwd")
        let md = try Dataset.map(path: dir.path + "/b.lwd")
        #expect(Self.same(d, md))
        #expect(md.labelKind == .real)
        // Overwriting is atomic and leaves no temporary file behind.
        try d.write(to: dir.path + "/a.lwd")
        #expect(Self.same(d, try Dataset.map(path: dir.path + "/a.lwd")))
        let left = try FileManagerShim.list(dir.path).filter { $0.hasPrefix(".") }
        #expect(left.isEmpty)
    }

    @Test func heartScaleRoundTrip() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let h = try LIBSVMReader.load(path: "/usr/share/doc/liblinear-tools/examples/heart_scale")
        try h.write(to: dir.path + "/h.lwd")
        #expect(Self.same(h, try Dataset.map(path: dir.path + "/h.lwd")))
    }

    @Test func corruptCachesRefused() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let s = try LIBSVMReader.load(path: dir.write("a.svm", "1 1:1 3:3\n-1 2:2\n"))
        let good = dir.path + "/good.lwd"
        try s.write(to: good)
        let bytes = try FileManagerShim.read(good)
        func check(_ name: String, _ b: [UInt8], _ code: LapwingError.Code, _ msg: String) {
            let p = dir.write(name, b)
            let e = thrownError { () throws(LapwingError) in try Dataset.map(path: p) }
            #expect(e?.code == code, "\(name): \(String(describing: e))")
            #expect(e?.message.contains(p + ": " + msg) == true, "\(name): \(String(describing: e))")
        }
        var badMagic = bytes
        badMagic[0] = UInt8(ascii: "X")
        check("magic.lwd", badMagic, .invalidData, "magic: not a Lapwing data cache")
        check("trunc.lwd", Array(bytes.dropLast(10)), .invalidData, "file size: truncated cache file")
        check("short.lwd", Array(bytes.prefix(20)), .invalidData, "truncated cache file: 20 bytes")
        var ver = bytes
        ver[8] = 9
        check("version.lwd", ver, .unsupported, "version: cache format version 9 not supported")
        var idx = bytes
        let ixOff = Int(idx[80]) | Int(idx[81]) << 8
        idx[ixOff] = 7  // first index 7 >= cols 3
        check("index.lwd", idx, .invalidData, "indices: row 0: index 7")
        var rs = bytes
        let rsOff = Int(rs[72]) | Int(rs[73]) << 8
        rs[rsOff + 8] = 9  // row 0 ends past nnz
        check("rowstart.lwd", rs, .invalidData, "rowStart: row 0 ends at 9")
    }

    @Test func failedWriteLeavesNothing() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let s = try LIBSVMReader.load(path: dir.write("a.svm", "1 1:1\n"))
        let e = thrownError { () throws(LapwingError) in try s.write(to: dir.path + "/nodir/x.lwd") }
        #expect(e?.code == .notFound)
        // Renaming over a directory fails after the temp file was written: it must be removed.
        let sub = dir.path + "/sub"
        dir.write("sub/keep", "x")
        let e2 = thrownError { () throws(LapwingError) in try s.write(to: sub) }
        #expect(e2 != nil)
        #expect(try FileManagerShim.list(dir.path).sorted() == ["a.svm", "sub"])
    }
}
