/// A minibatch as the models read it: `count` rows of `cols` features and one label per row.
///
/// Dense rows are one row-major block (`count * cols` floats), ready for GEMM. Sparse rows are
/// CSR: row `i` holds `indices[offsets[i] ..< offsets[i+1]]` (0-based, strictly increasing,
/// `< cols`) with the matching `values`. Labels are ±1 for binary data, the class index
/// (0 ..< classCount) as a Float for multi-class data, and the target for regression.
/// A `Batch` only borrows its memory: it is valid inside `BatchBuffer.withBatch`.
public struct Batch {
    public enum Rows {
        case dense(UnsafePointer<Float>)
        case sparse(offsets: UnsafePointer<Int32>, indices: UnsafePointer<Int32>, values: UnsafePointer<Float>)
    }

    public var count: Int
    public var cols: Int
    public var rows: Rows
    public var labels: UnsafePointer<Float>

    public init(count: Int, cols: Int, rows: Rows, labels: UnsafePointer<Float>) {
        self.count = count
        self.cols = cols
        self.rows = rows
        self.labels = labels
    }

    public var isSparse: Bool {
        if case .sparse = rows { return true }
        return false
    }
}

/// Reusable storage for minibatches: a worker fills it with the rows it drew and hands the
/// models a `Batch` view. Capacity is kept between batches, so the steady state does not allocate.
public struct BatchBuffer {
    public private(set) var cols: Int
    public private(set) var isSparse: Bool
    public private(set) var count = 0
    @usableFromInline var dense: [Float] = []
    @usableFromInline var offsets: [Int32] = [0]
    @usableFromInline var indices: [Int32] = []
    @usableFromInline var values: [Float] = []
    @usableFromInline var labels: [Float] = []

    public init(cols: Int, sparse: Bool, capacity: Int = 64) {
        self.cols = cols
        self.isSparse = sparse
        labels.reserveCapacity(capacity)
        if sparse {
            offsets.reserveCapacity(capacity + 1)
            indices.reserveCapacity(capacity * 64)
            values.reserveCapacity(capacity * 64)
        } else {
            dense.reserveCapacity(capacity * cols)
        }
    }

    public mutating func removeAll() {
        count = 0
        dense.removeAll(keepingCapacity: true)
        offsets.removeAll(keepingCapacity: true)
        offsets.append(0)
        indices.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
        labels.removeAll(keepingCapacity: true)
    }

    /// Appends a dense row of exactly `cols` features.
    public mutating func append(dense row: UnsafeBufferPointer<Float>, label: Float) {
        precondition(!isSparse && row.count == cols, "dense row of \(row.count) features into a batch of \(cols)")
        dense.append(contentsOf: row)
        labels.append(label)
        count += 1
    }

    /// Appends a sparse row (indices strictly increasing, each < cols).
    public mutating func append(
        sparseIndices idx: UnsafeBufferPointer<Int32>, values val: UnsafeBufferPointer<Float>, label: Float
    ) {
        precondition(isSparse && idx.count == val.count, "sparse row with \(idx.count) indices and \(val.count) values")
        indices.append(contentsOf: idx)
        values.append(contentsOf: val)
        offsets.append(Int32(indices.count))
        labels.append(label)
        count += 1
    }

    /// Calls `body` with a view of the rows appended so far.
    public func withBatch<R>(_ body: (Batch) throws -> R) rethrows -> R {
        try labels.withUnsafeBufferPointer { lab in
            let lp = lab.baseAddress ?? UnsafePointer(bitPattern: 8)!
            if isSparse {
                return try offsets.withUnsafeBufferPointer { off in
                    try indices.withUnsafeBufferPointer { ind in
                        try values.withUnsafeBufferPointer { val in
                            try body(Batch(
                                count: count, cols: cols,
                                rows: .sparse(
                                    offsets: off.baseAddress!,
                                    indices: ind.baseAddress ?? UnsafePointer(bitPattern: 4)!,
                                    values: val.baseAddress ?? UnsafePointer(bitPattern: 4)!),
                                labels: lp))
                        }
                    }
                }
            }
            return try dense.withUnsafeBufferPointer { d in
                try body(Batch(
                    count: count, cols: cols, rows: .dense(d.baseAddress ?? UnsafePointer(bitPattern: 4)!), labels: lp))
            }
        }
    }
}
