#if canImport(Glibc)
import Glibc
#endif

/// A worker's private gradient: a full-length vector, plus a record of which blocks of it a
/// sparse step touched, so that a step over sparse rows costs what its non-zeros cost and
/// never a pass over all parameters.
///
/// The first weight matrix (feature-major: one block of `blockSize` floats per input
/// feature) is tracked block by block on sparse steps; everything after it is always
/// written in full. After any step `values[0..<count]` is the whole gradient (blocks not
/// touched hold zeros), so callers may read it densely; `forEachRange` visits only the parts
/// that can be non-zero.
public final class GradientBuffer {
    public let count: Int
    public let values: UnsafeMutablePointer<Float>
    /// End of the block-tracked region (the first layer's weights).
    public let sparseEnd: Int
    public let blockSize: Int
    /// What a dense step keeps of the buffer's previous contents: 0 (the default) writes the
    /// gradient; `mu` makes the buffer a heavy-ball velocity, v = mu v + g, folded into the
    /// GEMMs themselves (one pass over the weights less per step). Sparse steps need 0.
    public var accumulate: Float = 0
    /// True after a dense step: the whole vector was written.
    public private(set) var isDense = true
    /// Blocks written by the last sparse step, in first-touch order.
    public private(set) var touched: [Int32] = []
    private let stamps: UnsafeMutablePointer<UInt32>
    private let blockCount: Int
    private var epoch: UInt32 = 0
    private var staleEverywhere = false

    public init(count: Int, sparseEnd: Int, blockSize: Int) {
        precondition(blockSize > 0 && sparseEnd % blockSize == 0 && sparseEnd <= count)
        self.count = count
        self.sparseEnd = sparseEnd
        self.blockSize = blockSize
        blockCount = sparseEnd / blockSize
        values = .allocate(capacity: max(count, 1))
        values.initialize(repeating: 0, count: max(count, 1))
        stamps = .allocate(capacity: max(blockCount, 1))
        stamps.initialize(repeating: 0, count: max(blockCount, 1))
        touched.reserveCapacity(1024)
    }

    deinit {
        values.deallocate()
        stamps.deallocate()
    }

    /// Starts a step that writes the whole vector.
    @usableFromInline func beginDense() {
        isDense = true
        staleEverywhere = true
    }

    /// Starts a step that accumulates into touched blocks (zeroed here) and writes the tail.
    @usableFromInline func beginSparse() {
        if staleEverywhere {
            values.update(repeating: 0, count: sparseEnd)
            staleEverywhere = false
        } else {
            for b in touched { (values + Int(b) * blockSize).update(repeating: 0, count: blockSize) }
        }
        touched.removeAll(keepingCapacity: true)
        epoch &+= 1
        if epoch == 0 {
            stamps.update(repeating: 0, count: blockCount)
            epoch = 1
        }
        isDense = false
    }

    /// The block for input feature `block`, recorded as touched.
    @inline(__always) @usableFromInline
    func touch(_ block: Int) -> UnsafeMutablePointer<Float> {
        if stamps[block] != epoch {
            stamps[block] = epoch
            touched.append(Int32(truncatingIfNeeded: block))
        }
        return values + block * blockSize
    }

    /// Calls `body(start, length)` for every range of the vector that may be non-zero.
    @inlinable
    public func forEachRange(_ body: (Int, Int) -> Void) {
        if isDense {
            body(0, count)
            return
        }
        for b in touched { body(Int(b) * blockSize, blockSize) }
        if count > sparseEnd { body(sparseEnd, count - sparseEnd) }
    }
}
