import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// What a data set's labels are.
public enum LabelKind: Equatable, Sendable, Codable {
    /// Two classes, stored as -1 and +1.
    case binary
    /// Classes 0 ..< classes, stored as Float.
    case multiclass(classes: Int)
    /// Real-valued targets (regression).
    case real
}

/// A data set parsed once into compact binary form: dense rows (row-major Float32) or CSR
/// (row starts, 0-based feature indices strictly increasing within a row, values), and one
/// Float label per row. Immutable after loading, so forked workers share it read-only.
public final class Dataset: @unchecked Sendable {
    public let rows: Int
    public let cols: Int
    public let isSparse: Bool
    public let labelKind: LabelKind
    /// Where it came from (a path, or a description).
    public let source: String
    /// Stored non-zeros (sparse) or rows * cols (dense).
    public let nnz: Int

    let labels: UnsafePointer<Float>
    let dense: UnsafePointer<Float>?
    let rowStart: UnsafePointer<Int64>?
    let indices: UnsafePointer<Int32>?
    let values: UnsafePointer<Float>?
    private let release: () -> Void

    init(
        rows: Int, cols: Int, labelKind: LabelKind, source: String, labels: UnsafePointer<Float>,
        dense: UnsafePointer<Float>?, rowStart: UnsafePointer<Int64>?, indices: UnsafePointer<Int32>?,
        values: UnsafePointer<Float>?, release: @escaping () -> Void
    ) {
        self.rows = rows
        self.cols = cols
        self.isSparse = dense == nil
        self.labelKind = labelKind
        self.source = source
        self.labels = labels
        self.dense = dense
        self.rowStart = rowStart
        self.indices = indices
        self.values = values
        self.nnz = dense == nil ? Int(rowStart![rows]) : rows * cols
        self.release = release
    }

    deinit { release() }

    /// A dense data set that takes over copies of these arrays.
    convenience init(dense: [Float], cols: Int, labels: [Float], labelKind: LabelKind, source: String) {
        let x = Self.copy(dense), y = Self.copy(labels)
        self.init(
            rows: labels.count, cols: cols, labelKind: labelKind, source: source, labels: y, dense: x, rowStart: nil,
            indices: nil, values: nil,
            release: {
                x.deallocate()
                y.deallocate()
            })
    }

    /// A CSR data set that takes over copies of these arrays.
    convenience init(
        rowStart: [Int64], indices: [Int32], values: [Float], cols: Int, labels: [Float], labelKind: LabelKind,
        source: String
    ) {
        let r = Self.copy(rowStart), i = Self.copy(indices), v = Self.copy(values), y = Self.copy(labels)
        self.init(
            rows: labels.count, cols: cols, labelKind: labelKind, source: source, labels: y, dense: nil, rowStart: r,
            indices: i, values: v,
            release: {
                r.deallocate()
                i.deallocate()
                v.deallocate()
                y.deallocate()
            })
    }

    private static func copy<T>(_ a: [T]) -> UnsafeMutablePointer<T> {
        let p = UnsafeMutablePointer<T>.allocate(capacity: max(a.count, 1))
        a.withUnsafeBufferPointer { if let base = $0.baseAddress { p.initialize(from: base, count: a.count) } }
        return p
    }

    /// The label of row `i`: ±1 (binary), the class index (multi-class) or the target.
    @inline(__always)
    public func label(_ i: Int) -> Float { labels[i] }

    /// Row `i` of a dense data set.
    public func denseRow(_ i: Int) -> UnsafeBufferPointer<Float> {
        precondition(!isSparse && i >= 0 && i < rows, "dense row \(i) of \(rows)")
        return UnsafeBufferPointer(start: dense! + i * cols, count: cols)
    }

    /// Row `i` of a sparse data set: its feature indices and values.
    public func sparseRow(_ i: Int) -> (indices: UnsafeBufferPointer<Int32>, values: UnsafeBufferPointer<Float>) {
        precondition(isSparse && i >= 0 && i < rows, "sparse row \(i) of \(rows)")
        let s = Int(rowStart![i]), e = Int(rowStart![i + 1])
        return (UnsafeBufferPointer(start: indices! + s, count: e - s), UnsafeBufferPointer(start: values! + s, count: e - s))
    }

    /// Fills `buffer` (cleared first) with these rows, in order. Allocates nothing once the
    /// buffer has grown to the batch size.
    public func gather(rows ids: some Sequence<Int>, into buffer: inout BatchBuffer) {
        buffer.removeAll()
        if isSparse {
            for i in ids {
                let (idx, val) = sparseRow(i)
                buffer.append(sparseIndices: idx, values: val, label: labels[i])
            }
        } else {
            for i in ids { buffer.append(dense: UnsafeBufferPointer(start: dense! + i * cols, count: cols), label: labels[i]) }
        }
    }

    /// The number of classes (2 for binary), or nil for regression.
    public var classes: Int? {
        switch labelKind {
        case .binary: return 2
        case .multiclass(let k): return k
        case .real: return nil
        }
    }

    /// The same rows with `cols` widened to `newCols` (sparse only: indices stay valid).
    public func widened(to newCols: Int, labelKind newKind: LabelKind? = nil) -> Dataset {
        precondition(newCols >= cols)
        let keep = self
        return Dataset(
            rows: rows, cols: isSparse ? newCols : cols, labelKind: newKind ?? labelKind, source: source,
            labels: labels, dense: dense, rowStart: rowStart, indices: indices, values: values,
            release: { withExtendedLifetime(keep) {} })
    }
}

/// How labels are read.
public struct LabelOptions: Sendable, Equatable {
    /// Force a kind instead of inferring it.
    public var kind: LabelKind?
    /// At least this many classes (e.g. the training set's, so the test set agrees).
    public var minimumClasses: Int

    public init(kind: LabelKind? = nil, minimumClasses: Int = 0) {
        self.kind = kind
        self.minimumClasses = minimumClasses
    }

    /// Infers the kind from the raw labels and converts them in place: {-1,+1} or {0,1} →
    /// binary (±1); non-negative integers → classes 0...max; anything else → real.
    func resolve(_ labels: inout [Float]) -> LabelKind {
        var allInt = true, nonNegative = true, maxLabel: Float = 0
        var binarySigned = true, binary01 = true
        for y in labels {
            if y != -1 && y != 1 { binarySigned = false }
            if y != 0 && y != 1 { binary01 = false }
            if y.rounded() != y { allInt = false }
            if y < 0 { nonNegative = false }
            maxLabel = max(maxLabel, y)
        }
        let kind: LabelKind
        if let forced = self.kind {
            kind = forced
        } else if (binarySigned || binary01) && minimumClasses <= 2 {
            kind = .binary
        } else if allInt && nonNegative {
            kind = .multiclass(classes: max(Int(maxLabel) + 1, minimumClasses))
        } else {
            kind = .real
        }
        if kind == .binary {
            for i in labels.indices { labels[i] = labels[i] > 0 ? 1 : -1 }
        }
        return kind
    }
}
