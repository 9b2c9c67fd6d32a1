/// A data set copied into memory the caller provides (a NUMA node's, for per-node copies of
/// the training set): one packed block of the labels and the features (dense rows, or the CSR
/// row starts, indices and values), each array aligned to a cache line.
extension Dataset {
    /// The bytes `copy(into:owner:)` writes.
    public var packedBytes: Int { packedLayout().total }

    /// Copies the rows into `memory` (`packedBytes` bytes, aligned to 64) and returns a data set
    /// that reads them there, with the same shape, labels and source; it keeps `owner` (the
    /// owner of `memory`) alive as long as it lives.
    public func copy(into memory: UnsafeMutableRawPointer, owner: AnyObject) -> Dataset {
        precondition(Int(bitPattern: memory) % 64 == 0, "a data copy needs memory aligned to 64 bytes")
        let l = packedLayout()
        func put<T>(_ src: UnsafePointer<T>?, _ count: Int, at offset: Int) -> UnsafePointer<T> {
            let dst = (memory + offset).bindMemory(to: T.self, capacity: count)
            if let src, count > 0 { dst.update(from: src, count: count) }
            return UnsafePointer(dst)
        }
        let storage = DatasetStorage(.borrowed(owner))
        let labels = put(labelPtr, rows, at: l.labels)
        let copy: Dataset
        if isSparse {
            copy = Dataset(
                rows: rows, cols: cols, nnz: nnz, labelKind: labelKind, source: source, storage: storage, labels: labels,
                rowStart: put(rowStartPtr, rows + 1, at: l.rowStart), indices: put(indexPtr, nnz, at: l.indices),
                values: put(valuePtr, nnz, at: l.values), labelFacts: labelFacts)
        } else {
            copy = Dataset(
                rows: rows, cols: cols, labelKind: labelKind, source: source, storage: storage, labels: labels,
                dense: put(densePtr, rows * cols, at: l.dense), labelFacts: labelFacts)
        }
        withExtendedLifetime(self) {}
        return copy
    }

    /// Offsets of the arrays in a packed copy (the ones a dense or sparse set lacks are empty).
    private func packedLayout() -> (labels: Int, dense: Int, rowStart: Int, indices: Int, values: Int, total: Int) {
        func align(_ n: Int) -> Int { (n + 63) & ~63 }
        let labels = 0
        let dense = align(labels + rows * 4)
        let rowStart = align(dense + (isSparse ? 0 : rows * cols * 4))
        let indices = align(rowStart + (isSparse ? (rows + 1) * 8 : 0))
        let values = align(indices + (isSparse ? nnz * 4 : 0))
        return (labels, dense, rowStart, indices, values, max(64, align(values + (isSparse ? nnz * 4 : 0))))
    }
}
