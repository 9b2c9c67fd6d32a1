/// A count sketch (Charikar, Chen, Farach-Colton) of a vector of `dimension` floats, as used by
/// Sketched SGD (Ivkin et al., NeurIPS 2019): `rows` x `columns` Float32 cells; row r sends
/// coordinate i to the cell `bucket_r(i)` with the sign `sign_r(i)`.
///
/// The hashes are a function of (seed, row, i) only, computed on the fly (no per-coordinate
/// tables): every process that builds a sketch with the same seed, rows and columns hashes
/// identically, so sketches built in different workers can be summed cell by cell. Per row,
/// two 32-bit words (an odd multiplier a_r and an offset b_r) come from the 64-bit seed through
/// SplitMix64; h_r(i) = fmix32(a_r * i + b_r) (MurmurHash3's finaliser), bucket = the high 32
/// bits of h * columns, sign = - when the lowest bit of h is set. The hash of eight coordinates
/// is computed in SIMD8 lanes; the scatter into the cells is scalar.
///
/// Hashes on the fly or tables? `lapwing-bench sketch` measures both (2 cores, shared, default
/// knobs): tables of d Int32 per row (bucket | sign bit) accumulate 2-3x faster (203,530 floats:
/// 1.1 ms against 3.6 ms; 4.4M: 42 ms against 87 ms) but cost rows * 4 = 20 bytes per parameter
/// per worker, five times the model, in every process. The sketch computes them on the fly; a
/// table mode is the first thing to add if accumulate shows on a profile. (The build targets
/// baseline x86-64, so the 32-bit lane multiplies of the hash are scalarised.)
///
/// The sketch is linear: the sketch of a sum is the sum of the sketches (`merge(adding:)`),
/// which is what lets a reduction sum the workers' sketches.
///
/// Cells live in a caller-provided buffer of `CountSketch.bytes(rows:columns:)` bytes (an arena
/// slot, later) or in one the sketch allocates and frees itself.
public final class CountSketch {
    public let rows: Int
    public let columns: Int
    public let dimension: Int
    public let seed: UInt64
    /// rows x columns, row-major.
    public let cells: UnsafeMutablePointer<Float>
    private let owned: Bool
    /// Per row: the odd multiplier and the offset of the row's hash.
    private let multipliers: [UInt32]
    private let offsets: [UInt32]

    /// Bytes of the cells of a rows x columns sketch.
    public static func bytes(rows: Int, columns: Int) -> Int { rows * columns * MemoryLayout<Float>.stride }

    /// A sketch whose cells live in `cells` (at least `bytes(rows:columns:)` bytes, not freed by
    /// the sketch). The cells are left as they are: call `clear()` for an empty sketch.
    public init(rows: Int, columns: Int, dimension: Int, seed: UInt64, cells: UnsafeMutablePointer<Float>) {
        precondition(rows >= 1 && rows <= 64, "rows in 1...64")
        precondition(columns >= 1 && columns <= Int(UInt32.max), "columns in 1...2^32-1")
        precondition(dimension >= 0 && dimension <= Int(UInt32.max), "dimension < 2^32")
        self.rows = rows
        self.columns = columns
        self.dimension = dimension
        self.seed = seed
        self.cells = cells
        self.owned = false
        (multipliers, offsets) = CountSketch.rowHashes(seed: seed, rows: rows)
    }

    /// A sketch that allocates its cells (zeroed) and frees them with itself.
    public init(rows: Int, columns: Int, dimension: Int, seed: UInt64) {
        precondition(rows >= 1 && rows <= 64, "rows in 1...64")
        precondition(columns >= 1 && columns <= Int(UInt32.max), "columns in 1...2^32-1")
        precondition(dimension >= 0 && dimension <= Int(UInt32.max), "dimension < 2^32")
        self.rows = rows
        self.columns = columns
        self.dimension = dimension
        self.seed = seed
        self.cells = .allocate(capacity: rows * columns)
        self.cells.initialize(repeating: 0, count: rows * columns)
        self.owned = true
        (multipliers, offsets) = CountSketch.rowHashes(seed: seed, rows: rows)
    }

    deinit { if owned { cells.deallocate() } }

    private static func rowHashes(seed: UInt64, rows: Int) -> ([UInt32], [UInt32]) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        var a = [UInt32](), b = [UInt32]()
        for _ in 0..<rows {
            let z = splitmix()
            a.append(UInt32(truncatingIfNeeded: z) | 1)
            b.append(UInt32(truncatingIfNeeded: z >> 32))
        }
        return (a, b)
    }

    @inline(__always)
    static func fmix(_ x: UInt32) -> UInt32 {
        var h = x
        h ^= h >> 16
        h = h &* 0x85EB_CA6B
        h ^= h >> 13
        h = h &* 0xC2B2_AE35
        h ^= h >> 16
        return h
    }

    @inline(__always)
    static func fmix(_ x: SIMD8<UInt32>) -> SIMD8<UInt32> {
        var h = x
        h ^= h &>> 16
        h = h &* 0x85EB_CA6B
        h ^= h &>> 13
        h = h &* 0xC2B2_AE35
        h ^= h &>> 16
        return h
    }

    @inline(__always)
    private static func bucket(_ h: UInt32, _ columns: UInt64) -> Int { Int((UInt64(h) &* columns) &>> 32) }

    /// Row r's cell and sign (+1 or -1) for coordinate i: what every process computes alike.
    public func hash(row r: Int, index i: Int) -> (bucket: Int, sign: Float) {
        let h = CountSketch.fmix(UInt32(truncatingIfNeeded: i) &* multipliers[r] &+ offsets[r])
        return (CountSketch.bucket(h, UInt64(columns)), h & 1 == 0 ? 1 : -1)
    }

    /// Every cell to zero.
    public func clear() { cells.update(repeating: 0, count: rows * columns) }

    /// Adds the vector `v` (coordinates `start ..< start + count` of the sketched vector) into
    /// the sketch: cell[r][bucket_r(i)] += sign_r(i) * v[i - start] for every row.
    /// The vector is taken in blocks that stay in L1 while every row goes over them.
    public func accumulate(_ v: UnsafePointer<Float>, count: Int, startingAt start: Int = 0) {
        precondition(start >= 0 && count >= 0 && start + count <= dimension)
        let block = 2048
        var s = 0
        while s < count {
            let e = min(count, s + block)
            for r in 0..<rows { accumulateRow(r, v + s, e - s, start + s) }
            s = e
        }
    }

    @inline(__always)
    private func accumulateRow(_ r: Int, _ v: UnsafePointer<Float>, _ n: Int, _ first: Int) {
        let row = cells + r * columns
        let cols = UInt64(columns)
        let a = multipliers[r], b = offsets[r]
        let raw = UnsafeRawPointer(v)
        var lanes = SIMD8<UInt32>(0, 1, 2, 3, 4, 5, 6, 7) &+ UInt32(truncatingIfNeeded: first)
        let body = n & ~7
        var j = 0
        while j < body {
            let h = CountSketch.fmix(lanes &* a &+ b)
            let bits = raw.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<UInt32>.self)
            let signed = bits ^ ((h & 1) &<< 31)
            for l in 0..<8 {
                row[CountSketch.bucket(h[l], cols)] += Float(bitPattern: signed[l])
            }
            lanes &+= 8
            j += 8
        }
        while j < n {
            let h = CountSketch.fmix(UInt32(truncatingIfNeeded: first + j) &* a &+ b)
            let x = v[j].bitPattern ^ ((h & 1) << 31)
            row[CountSketch.bucket(h, cols)] += Float(bitPattern: x)
            j += 1
        }
    }

    /// cells += other.cells (the sketch of the sum of the two vectors). Both must hash alike.
    public func merge(adding other: CountSketch) {
        precondition(
            other.rows == rows && other.columns == columns && other.seed == seed && other.dimension == dimension,
            "merging sketches that hash differently")
        CountSketch.add(other.cells, into: cells, count: rows * columns)
    }

    /// dst[i] += src[i], eight floats at a time (for sums of sketch cells held in an arena).
    public static func add(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) {
        let body = count & ~7
        let s = UnsafeRawPointer(src), d = UnsafeMutableRawPointer(dst)
        var j = 0
        while j < body {
            let x = s.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self)
            let y = d.loadUnaligned(fromByteOffset: j * 4, as: SIMD8<Float>.self)
            d.storeBytes(of: x + y, toByteOffset: j * 4, as: SIMD8<Float>.self)
            j += 8
        }
        while j < count {
            dst[j] += src[j]
            j += 1
        }
    }

    /// The estimate of coordinate i: the median over rows of sign_r(i) * cell[r][bucket_r(i)]
    /// (the mean of the two middle values when rows is even).
    public func estimate(_ i: Int) -> Float {
        precondition(i >= 0 && i < dimension)
        var e = [Float](repeating: 0, count: rows)
        for r in 0..<rows {
            let (bucket, sign) = hash(row: r, index: i)
            e[r] = sign * cells[r * columns + bucket]
        }
        e.sort()
        return rows & 1 == 1 ? e[rows / 2] : (e[rows / 2 - 1] + e[rows / 2]) * 0.5
    }

    /// The estimates of coordinates `first ..< first + 8`: hashes in SIMD8 lanes, all rows' cells
    /// gathered first into `scratch` (rows x 8 floats; independent loads, so their cache misses
    /// overlap), then sorted per lane by a branchless odd-even transposition network for the median.
    @inline(__always)
    private func estimate8(_ first: Int, _ scratch: UnsafeMutablePointer<Float>) -> SIMD8<Float> {
        let lanes = SIMD8<UInt32>(0, 1, 2, 3, 4, 5, 6, 7) &+ UInt32(truncatingIfNeeded: first)
        let cols = UInt64(columns)
        for r in 0..<rows {
            let h = CountSketch.fmix(lanes &* multipliers[r] &+ offsets[r])
            let row = cells + r * columns, out = scratch + r * 8
            for l in 0..<8 {
                out[l] = Float(bitPattern: row[CountSketch.bucket(h[l], cols)].bitPattern ^ ((h[l] & 1) << 31))
            }
        }
        for pass in 0..<rows {
            var r = pass & 1
            while r + 1 < rows {
                let a = scratch + r * 8, b = a + 8
                for l in 0..<8 {
                    let x = a[l], y = b[l]
                    a[l] = x < y ? x : y
                    b[l] = x < y ? y : x
                }
                r += 2
            }
        }
        let mid = UnsafeRawPointer(scratch + (rows / 2) * 8).loadUnaligned(as: SIMD8<Float>.self)
        if rows & 1 == 1 { return mid }
        let low = UnsafeRawPointer(scratch + (rows / 2 - 1) * 8).loadUnaligned(as: SIMD8<Float>.self)
        return (low + mid) * 0.5
    }

    /// Heavy-hitter recovery: estimates every coordinate and keeps the k with the largest
    /// |estimate| (ties: the lower index), in a bounded min-heap: a block of eight estimates is
    /// compared with the heap's smallest at once and skipped when none is larger, so the cost is
    /// one pass of estimates plus O(k log k log(d/k)) heap work. Writes the indices, ascending,
    /// into `indices` (capacity k) and returns how many (min(k, dimension)).
    @discardableResult
    public func topCandidates(k: Int, into indices: UnsafeMutablePointer<Int32>) -> Int {
        precondition(k >= 0)
        let k = min(k, dimension)
        guard k > 0 else { return 0 }
        var heap = TopMagnitudeHeap(capacity: k)
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: rows * 8)
        defer { scratch.deallocate() }
        let body = dimension & ~7
        var i = 0
        while i < body {
            let e = estimate8(i, scratch)
            let m = unsafeBitCast(unsafeBitCast(e, to: SIMD8<UInt32>.self) & 0x7FFF_FFFF, to: SIMD8<Float>.self)
            if heap.count < k || any(m .> heap.threshold) {
                for l in 0..<8 { heap.offer(m[l], Int32(truncatingIfNeeded: i + l)) }
            }
            i += 8
        }
        while i < dimension {
            heap.offer(abs(estimate(i)), Int32(truncatingIfNeeded: i))
            i += 1
        }
        return heap.drainSorted(into: indices)
    }

    /// `topCandidates(k:into:)` as an array.
    public func topCandidates(k: Int) -> [Int32] {
        let k = min(max(k, 0), dimension)
        return [Int32](unsafeUninitializedCapacity: k) { buf, n in
            n = k == 0 ? 0 : topCandidates(k: k, into: buf.baseAddress!)
        }
    }
}

/// The k entries of largest magnitude seen so far, as a min-heap on (magnitude, then larger index
/// first out) so that among equal magnitudes the lower index stays.
struct TopMagnitudeHeap {
    private(set) var mags: [Float] = []
    private(set) var idx: [Int32] = []
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
        mags.reserveCapacity(capacity)
        idx.reserveCapacity(capacity)
    }

    var count: Int { mags.count }
    /// The smallest magnitude kept (meaningful once full).
    var threshold: Float { mags.isEmpty ? -.infinity : mags[0] }

    /// a is "smaller" (nearer the top of the min-heap) than b.
    @inline(__always)
    private func less(_ a: Int, _ b: Int) -> Bool {
        mags[a] < mags[b] || (mags[a] == mags[b] && idx[a] > idx[b])
    }

    @inline(__always)
    mutating func offer(_ m: Float, _ i: Int32) {
        guard capacity > 0, !m.isNaN else { return }
        if mags.count < capacity {
            mags.append(m)
            idx.append(i)
            var c = mags.count - 1
            while c > 0 {
                let p = (c - 1) / 2
                guard less(c, p) else { break }
                mags.swapAt(c, p)
                idx.swapAt(c, p)
                c = p
            }
            return
        }
        // Offered in increasing index order: an equal magnitude never displaces a kept one.
        guard m > mags[0] else { return }
        mags[0] = m
        idx[0] = i
        var p = 0
        let n = mags.count
        while true {
            let l = 2 * p + 1, r = l + 1
            var s = p
            if l < n && less(l, s) { s = l }
            if r < n && less(r, s) { s = r }
            if s == p { break }
            mags.swapAt(s, p)
            idx.swapAt(s, p)
            p = s
        }
    }

    /// The kept indices, ascending, into `out`; returns how many.
    func drainSorted(into out: UnsafeMutablePointer<Int32>) -> Int {
        let sorted = idx.sorted()
        for (j, v) in sorted.enumerated() { out[j] = v }
        return sorted.count
    }
}
