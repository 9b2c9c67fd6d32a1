import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// What the labels of a data set mean, and how they are stored (one Float per row).
public enum LabelKind: Equatable, Sendable, Codable {
    /// Two classes, stored as -1 and +1.
    case binary
    /// `classes` classes, stored as the class index 0 ..< classes.
    case multiclass(classes: Int)
    /// Regression targets, stored as they are.
    case real

    /// 2 for binary, the class count for multi-class data, 0 for regression.
    public var classCount: Int {
        switch self {
        case .binary: 2
        case .multiclass(let c): c
        case .real: 0
        }
    }
}

/// How a reader decides the label kind.
public struct LabelOptions: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable, Codable {
        /// Labels ⊆ {-1, +1} or ⊆ {0, 1} are binary (unless `minClasses` > 2); else non-negative
        /// integers are multi-class; else real.
        case auto
        /// Labels must be ⊆ {-1, +1} or ⊆ {0, 1}; stored as ±1.
        case binary
        /// Labels must be non-negative integers; classes = max(largest + 1, minClasses).
        case multiclass
        /// Labels are stored as they are.
        case real
    }

    public var kind: Kind
    /// The least class count of multi-class data, e.g. the training set's when loading its test set.
    public var minClasses: Int

    public init(kind: Kind = .auto, minClasses: Int = 0) {
        self.kind = kind
        self.minClasses = minClasses
    }

    /// Options that give a second data set (a test set) the kind of `kind`.
    public static func matching(_ kind: LabelKind) -> LabelOptions {
        switch kind {
        case .binary: LabelOptions(kind: .binary)
        case .multiclass(let c): LabelOptions(kind: .multiclass, minClasses: c)
        case .real: LabelOptions(kind: .real)
        }
    }
}

/// The memory behind a `Dataset`: malloc'd arrays, one read-only file mapping, or memory
/// another object owns (a copy's: kept alive, released by its owner).
final class DatasetStorage: @unchecked Sendable {
    enum Kind {
        case heap([UnsafeMutableRawPointer])
        case mapped(UnsafeMutableRawPointer, Int)
        case borrowed(AnyObject)
    }

    let kind: Kind

    init(_ kind: Kind) { self.kind = kind }

    deinit {
        switch kind {
        case .heap(let ptrs): for p in ptrs { free(p) }
        case .mapped(let p, let len): munmap(p, len)
        case .borrowed: break
        }
    }
}

/// A data set parsed once into a compact binary form: dense rows (row-major Float32) or CSR
/// sparse rows, and one Float label per row. Immutable after loading, so it is shared freely
/// between threads, and forked workers read it without copying.
///
/// The raw buffers (`labels`, `dense`, `rowStart`, `indices`, `values`) point into memory the
/// data set owns: they are valid while the `Dataset` is alive (prefer the `withUnsafe...` calls).
public final class Dataset: @unchecked Sendable {
    public let rows: Int
    /// The feature dimension.
    public let cols: Int
    public let isSparse: Bool
    /// Stored features: rows * cols for dense data, the CSR entry count for sparse data.
    public let nnz: Int
    public let labelKind: LabelKind
    /// The path the data came from.
    public let source: String
    /// Where the first labels are that a binary or a class model cannot use, and whether every
    /// label is the same.
    public let labelFacts: LabelFacts

    let storage: DatasetStorage
    let labelPtr: UnsafePointer<Float>
    let densePtr: UnsafePointer<Float>?
    let rowStartPtr: UnsafePointer<Int64>?
    let indexPtr: UnsafePointer<Int32>?
    let valuePtr: UnsafePointer<Float>?

    init(
        rows: Int, cols: Int, labelKind: LabelKind, source: String, storage: DatasetStorage,
        labels: UnsafePointer<Float>, dense: UnsafePointer<Float>, labelFacts: LabelFacts = LabelFacts()
    ) {
        self.rows = rows
        self.cols = cols
        self.isSparse = false
        self.nnz = rows * cols
        self.labelKind = labelKind
        self.source = source
        self.labelFacts = labelFacts
        self.storage = storage
        self.labelPtr = labels
        self.densePtr = dense
        self.rowStartPtr = nil
        self.indexPtr = nil
        self.valuePtr = nil
    }

    init(
        rows: Int, cols: Int, nnz: Int, labelKind: LabelKind, source: String, storage: DatasetStorage,
        labels: UnsafePointer<Float>, rowStart: UnsafePointer<Int64>, indices: UnsafePointer<Int32>,
        values: UnsafePointer<Float>, labelFacts: LabelFacts = LabelFacts()
    ) {
        self.rows = rows
        self.cols = cols
        self.isSparse = true
        self.nnz = nnz
        self.labelKind = labelKind
        self.source = source
        self.labelFacts = labelFacts
        self.storage = storage
        self.labelPtr = labels
        self.densePtr = nil
        self.rowStartPtr = rowStart
        self.indexPtr = indices
        self.valuePtr = values
    }

    /// The same rows seen with another feature dimension (sparse data may widen) or label kind
    /// (a larger class count); shares the memory.
    func reshaped(cols newCols: Int? = nil, labelKind newKind: LabelKind? = nil) -> Dataset {
        let c = newCols ?? cols
        precondition(c == cols || (isSparse && c > cols), "only sparse data can widen")
        if isSparse {
            return Dataset(
                rows: rows, cols: c, nnz: nnz, labelKind: newKind ?? labelKind, source: source, storage: storage,
                labels: labelPtr, rowStart: rowStartPtr!, indices: indexPtr!, values: valuePtr!, labelFacts: labelFacts)
        }
        return Dataset(
            rows: rows, cols: c, labelKind: newKind ?? labelKind, source: source, storage: storage,
            labels: labelPtr, dense: densePtr!, labelFacts: labelFacts)
    }

    /// 2 for binary, the class count for multi-class data, 0 for regression.
    public var classCount: Int { labelKind.classCount }

    @inline(__always)
    public func label(_ i: Int) -> Float {
        precondition(i >= 0 && i < rows, "row \(i) out of range 0..<\(rows)")
        return labelPtr[i]
    }

    /// Row `i` of dense data (`cols` features).
    @inline(__always)
    public func denseRow(_ i: Int) -> UnsafeBufferPointer<Float> {
        precondition(i >= 0 && i < rows, "row \(i) out of range 0..<\(rows)")
        guard let d = densePtr else { preconditionFailure("denseRow on sparse data") }
        return UnsafeBufferPointer(start: d + i * cols, count: cols)
    }

    /// Row `i` of sparse data: 0-based feature indices (strictly increasing) and their values.
    @inline(__always)
    public func sparseRow(_ i: Int) -> (indices: UnsafeBufferPointer<Int32>, values: UnsafeBufferPointer<Float>) {
        precondition(i >= 0 && i < rows, "row \(i) out of range 0..<\(rows)")
        guard let rs = rowStartPtr else { preconditionFailure("sparseRow on dense data") }
        let a = Int(rs[i])
        let n = Int(rs[i + 1]) - a
        return (UnsafeBufferPointer(start: indexPtr! + a, count: n), UnsafeBufferPointer(start: valuePtr! + a, count: n))
    }

    /// All labels (one per row).
    public var labels: UnsafeBufferPointer<Float> { UnsafeBufferPointer(start: labelPtr, count: rows) }
    /// Dense data, row-major (empty for sparse data).
    public var dense: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: densePtr, count: densePtr == nil ? 0 : rows * cols)
    }
    /// CSR row starts, rows + 1 entries (empty for dense data).
    public var rowStart: UnsafeBufferPointer<Int64> {
        UnsafeBufferPointer(start: rowStartPtr, count: rowStartPtr == nil ? 0 : rows + 1)
    }
    /// CSR feature indices, 0-based (empty for dense data).
    public var indices: UnsafeBufferPointer<Int32> {
        UnsafeBufferPointer(start: indexPtr, count: indexPtr == nil ? 0 : nnz)
    }
    /// CSR values (empty for dense data).
    public var values: UnsafeBufferPointer<Float> {
        UnsafeBufferPointer(start: valuePtr, count: valuePtr == nil ? 0 : nnz)
    }

    /// Calls `body` with the dense block (rows * cols, row-major) and the labels.
    public func withUnsafeDense<R>(
        _ body: (_ features: UnsafeBufferPointer<Float>, _ labels: UnsafeBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        precondition(!isSparse, "withUnsafeDense on sparse data")
        return try withExtendedLifetime(self) { try body(dense, labels) }
    }

    /// Calls `body` with the CSR arrays and the labels.
    public func withUnsafeCSR<R>(
        _ body: (
            _ rowStart: UnsafeBufferPointer<Int64>, _ indices: UnsafeBufferPointer<Int32>,
            _ values: UnsafeBufferPointer<Float>, _ labels: UnsafeBufferPointer<Float>
        ) throws -> R
    ) rethrows -> R {
        precondition(isSparse, "withUnsafeCSR on dense data")
        return try withExtendedLifetime(self) { try body(rowStart, indices, values, labels) }
    }

    /// Clears `buffer` and appends `rows` (with their labels) to it. Does not allocate once the
    /// buffer has grown to the batch size.
    public func gather(rows selected: some Sequence<Int>, into buffer: inout BatchBuffer) {
        precondition(
            buffer.isSparse == isSparse && buffer.cols == cols,
            "batch buffer (\(buffer.cols) cols, sparse \(buffer.isSparse)) does not match the data (\(cols), \(isSparse))")
        buffer.removeAll()
        if isSparse {
            for r in selected {
                let row = sparseRow(r)
                buffer.append(sparseIndices: row.indices, values: row.values, label: labelPtr[r])
            }
        } else {
            for r in selected {
                buffer.append(dense: denseRow(r), label: labelPtr[r])
            }
        }
        withExtendedLifetime(self) {}
    }
}

extension Dataset: CustomStringConvertible {
    public var description: String {
        let kind: String
        switch labelKind {
        case .binary: kind = "binary"
        case .multiclass(let c): kind = "\(c) classes"
        case .real: kind = "real labels"
        }
        return "\(source): \(rows) rows x \(cols) features, \(isSparse ? "sparse, \(nnz) stored" : "dense"), \(kind)"
    }
}

/// Decides the label kind of `labels` and rewrites them into the stored form (±1 for binary);
/// also returns what a model check needs to know about them. `place(i)` locates row `i` after
/// the file name in an error message (":12" for line 12, ": byte 8"). The messages describe a
/// bad label without quoting it (error reasons reach every user who lists the job).
func finalizeLabels(
    _ labels: UnsafeMutablePointer<Float>, count: Int, options: LabelOptions, name: String,
    place: (Int) -> String
) throws(LapwingError) -> (LabelKind, LabelFacts) {
    let facts = LabelFacts.scan(labels, count: count) { i in name + place(i) }
    let binary = facts.firstNonBinary == nil
    let classIndices = facts.firstNonClass == nil
    var maxLabel: Float = 0
    var allMinusOneOrOne = true
    for i in 0..<count {
        let v = labels[i]
        if v > maxLabel { maxLabel = v }
        if v != 1 && v != -1 { allMinusOneOrOne = false }
    }
    var kind = options.kind
    if kind == .auto {
        if binary && options.minClasses <= 2 {
            kind = .binary
        } else if classIndices {
            kind = .multiclass
        } else {
            kind = .real
        }
    }
    switch kind {
    case .auto, .real:
        return (.real, facts)
    case .binary:
        if let bad = facts.firstNonBinary {
            throw LapwingError(.invalidData, "\(bad.place): \(bad.problem): binary labels are -1/+1 or 0/1")
        }
        if !allMinusOneOrOne {
            for i in 0..<count { labels[i] = labels[i] == 0 ? -1 : 1 }
        }
        return (.binary, facts)
    case .multiclass:
        if let bad = facts.firstNonClass {
            throw LapwingError(
                .invalidData, "\(bad.place): \(bad.problem) is not a class index (a non-negative integer)")
        }
        let classes = max(count == 0 ? 0 : Int(maxLabel) + 1, options.minClasses)
        if classes > 1_000_000 {
            throw LapwingError(
                .invalidData, "\(name): a label of 1000000 or more is too large for a class index")
        }
        return (.multiclass(classes: classes), facts)
    }
}
