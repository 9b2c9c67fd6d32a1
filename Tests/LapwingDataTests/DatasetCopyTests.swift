import LapwingCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import LapwingData

/// `Dataset.copy(into:owner:)`, the packed copy per-node data is made of: the same rows,
/// labels and shape, read from the new memory only, which its owner keeps alive.
@Suite struct DatasetCopyTests {
    final class Block {
        let base: UnsafeMutableRawPointer
        init(_ bytes: Int) { base = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64) }
        deinit { base.deallocate() }
    }

    func expectSame(_ a: Dataset, _ b: Dataset) {
        #expect(a.rows == b.rows && a.cols == b.cols && a.nnz == b.nnz && a.isSparse == b.isSparse)
        #expect(a.labelKind == b.labelKind && a.source == b.source)
        #expect(Array(a.labels) == Array(b.labels))
        #expect(Array(a.dense) == Array(b.dense))
        #expect(Array(a.rowStart) == Array(b.rowStart))
        #expect(Array(a.indices) == Array(b.indices))
        #expect(Array(a.values) == Array(b.values))
    }

    func copy(_ d: Dataset) -> (Dataset, Block) {
        let block = Block(d.packedBytes)
        return (d.copy(into: block.base, owner: block), block)
    }

    func inside(_ p: UnsafeRawPointer?, _ block: Block, _ bytes: Int) -> Bool {
        guard let p else { return true }
        return p >= UnsafeRawPointer(block.base) && p < UnsafeRawPointer(block.base + bytes)
    }

    @Test func sparseCopyHasTheSameRowsInItsOwnMemory() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let d = try LIBSVMReader.load(path: dir.write("c.svm", "1 1:1 3:3\n-1 2:2\n1\n-1 1:4 2:5 3:6\n"))
        let (c, block) = copy(d)
        expectSame(d, c)
        let arrays: [UnsafeRawPointer?] = [
            UnsafeRawPointer(c.labels.baseAddress), UnsafeRawPointer(c.rowStart.baseAddress),
            UnsafeRawPointer(c.indices.baseAddress), UnsafeRawPointer(c.values.baseAddress),
        ]
        for p in arrays {
            #expect(inside(p, block, d.packedBytes))
            #expect(Int(bitPattern: p) % 64 == 0)
        }
        #expect(c.sparseRow(3).values.elementsEqual([4, 5, 6]))
    }

    @Test func denseCopyOutlivesTheOriginalAndKeepsItsOwner() throws {
        let dir = TempDir()
        defer { dir.remove() }
        var d: Dataset? = try CSVReader.load(path: dir.write("c.csv", "0,1,2\n1,3,4\n2,5,6\n"))
        let expected = (Array(d!.labels), Array(d!.dense))
        weak var owner: Block?
        var c: Dataset?
        do {
            let (copied, block) = copy(d!)
            owner = block
            c = copied
            #expect(inside(UnsafeRawPointer(copied.dense.baseAddress), block, d!.packedBytes))
        }
        d = nil
        #expect(owner != nil, "the copy must keep its memory's owner alive")
        #expect(Array(c!.labels) == expected.0 && Array(c!.dense) == expected.1)
        var buf = BatchBuffer(cols: 2, sparse: false, capacity: 1)
        c!.gather(rows: [2], into: &buf)
        buf.withBatch { b in
            guard case .dense(let x) = b.rows else {
                Issue.record("not dense")
                return
            }
            #expect(x[0] == 5 && x[1] == 6 && b.labels[0] == 2)
        }
        c = nil
        #expect(owner == nil, "the copy's memory must go with the copy")
    }
}
