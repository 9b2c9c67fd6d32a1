/// The knobs of Sketched SGD (later `--compress sketch` with `--sketch-k`, `--sketch-rows`,
/// `--sketch-columns`; not CLI options yet).
///
/// Defaults for a model of d parameters (`SketchKnobs(dimension:)`):
/// - k = max(1, d / 1000): the coordinates updated per round (0.1% of the model);
/// - rows = 5, as in the paper's experiments (the median of 5 estimates);
/// - columns = 20 * k: a count sketch finds the l2-heavy hitters of a vector with O(k) columns;
///   20 per heavy coordinate keeps the per-row noise on an estimate at ||tail||_2 / sqrt(20k);
/// - candidates = 4 * k: coordinates recovered from the summed sketch whose exact values are
///   asked of every worker in the second round (the reference code's `p2`), of which the k
///   largest are applied.
/// Per worker and round that moves rows * columns + candidates floats (the sketch up, the
/// candidates' exact values up) instead of d: with the defaults 100k + 4k = 0.104 d, about 9.6x
/// fewer bytes than sending v whole, whatever d (the k indices the coordinator sends back are
/// counted by the caller). Scaling k scales the sketch with it.
public struct SketchKnobs: Sendable, Equatable {
    public var k: Int
    public var rows: Int
    public var columns: Int
    /// Candidates recovered from the summed sketch for the exact second round (>= k).
    public var candidates: Int

    public static let defaultRows = 5
    public static let columnsPerK = 20
    public static let candidatesPerK = 4
    public static let kFraction = 1000  // k = d / kFraction

    /// The defaults for `dimension` parameters; any knob given replaces its default, and columns
    /// and candidates follow k unless given.
    public init(dimension d: Int, k: Int? = nil, rows: Int? = nil, columns: Int? = nil, candidates: Int? = nil) {
        let k = max(1, min(k ?? d / SketchKnobs.kFraction, max(d, 1)))
        self.k = k
        self.rows = rows ?? SketchKnobs.defaultRows
        self.columns = columns ?? SketchKnobs.columnsPerK * k
        self.candidates = max(k, min(candidates ?? SketchKnobs.candidatesPerK * k, max(d, 1)))
    }

    /// Floats a worker writes per round: its sketch and its values at the candidates.
    public var floatsPerWorker: Int { rows * columns + candidates }
}

/// The worker-side arithmetic of Sketched SGD (Ivkin et al., "Communication-efficient distributed
/// SGD with Sketching", NeurIPS 2019, Algorithm 1), as functions over buffers. One round:
///
///     worker w:  u_w = rho * u_w + g_w;  v_w += lr * u_w      accumulateMomentum
///                S_w = sketch(v_w)                            sketch
///     reduce:    S = sum_w S_w                                CountSketch.merge / add (caller)
///                C = top `candidates` of S                    candidates
///     worker w:  c_w = v_w[C]                                 gather   (the exact second round)
///     reduce:    c = sum_w c_w;  (I, D) = top k of c          selectTopK (caller sums)
///     everyone:  x[I] -= D                                    applyUpdate
///     worker w:  v_w[I] = 0 (error feedback), u_w[I] = 0 (momentum masking)   clearSent
///
/// What is not sent stays in v_w and is sent in a later round (error feedback); momentum is
/// stopped on the coordinates that were sent so they are not applied twice (momentum masking).
/// With lr applied in v (as in the paper) the update is applied with scale 1; with lr = 1 in v
/// (the reference code's form) pass the learning rate as applyUpdate's scale.
public enum SketchedSGD {
    /// u = rho * u + g; v += lr * u, over `count` floats, eight at a time.
    public static func accumulateMomentum(
        gradient g: UnsafePointer<Float>, momentum u: UnsafeMutablePointer<Float>,
        error v: UnsafeMutablePointer<Float>, count: Int, rho: Float, lr: Float = 1
    ) {
        let body = count & ~7
        let gr = UnsafeRawPointer(g), ur = UnsafeMutableRawPointer(u), vr = UnsafeMutableRawPointer(v)
        var j = 0
        while j < body {
            let o = j * 4
            let m = rho * ur.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
                + gr.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self)
            ur.storeBytes(of: m, toByteOffset: o, as: SIMD8<Float>.self)
            let e = vr.loadUnaligned(fromByteOffset: o, as: SIMD8<Float>.self) + lr * m
            vr.storeBytes(of: e, toByteOffset: o, as: SIMD8<Float>.self)
            j += 8
        }
        while j < count {
            u[j] = rho * u[j] + g[j]
            v[j] += lr * u[j]
            j += 1
        }
    }

    /// The worker's sketch of its error-accumulated momentum: cleared, then v accumulated.
    public static func sketch(error v: UnsafePointer<Float>, count: Int, into sketch: CountSketch) {
        sketch.clear()
        sketch.accumulate(v, count: count)
    }

    /// The coordinates whose exact values the second round gathers: the `knobs.candidates`
    /// largest estimates of the summed sketch, ascending.
    public static func candidates(summed: CountSketch, knobs: SketchKnobs) -> [Int32] {
        summed.topCandidates(k: knobs.candidates)
    }

    /// out[j] = v[indices[j]] for j < count: a worker's contribution to the second round.
    public static func gather(
        _ v: UnsafePointer<Float>, at indices: UnsafePointer<Int32>, count: Int, into out: UnsafeMutablePointer<Float>
    ) {
        for j in 0..<count { out[j] = v[Int(indices[j])] }
    }

    /// From the candidates and their exact summed values, the k of largest magnitude (ties: the
    /// lower index): writes their indices (ascending) and values into `outIndices`/`outValues`
    /// (capacity k) and returns how many (min(k, count)). This is Δ.
    @discardableResult
    public static func selectTopK(
        candidates: UnsafePointer<Int32>, values: UnsafePointer<Float>, count: Int, k: Int,
        outIndices: UnsafeMutablePointer<Int32>, outValues: UnsafeMutablePointer<Float>
    ) -> Int {
        let k = min(max(k, 0), count)
        guard k > 0 else { return 0 }
        // Heap over positions in the candidate list (ascending candidates keep the tie rule).
        var heap = TopMagnitudeHeap(capacity: k)
        for j in 0..<count { heap.offer(abs(values[j]), Int32(j)) }
        let pos = UnsafeMutablePointer<Int32>.allocate(capacity: k)
        defer { pos.deallocate() }
        let n = heap.drainSorted(into: pos)
        for j in 0..<n {
            let p = Int(pos[j])
            outIndices[j] = candidates[p]
            outValues[j] = values[p]
        }
        return n
    }

    /// x[indices[j]] -= scale * values[j]: the update Δ applied to the parameters.
    public static func applyUpdate(
        indices: UnsafePointer<Int32>, values: UnsafePointer<Float>, count: Int,
        to x: UnsafeMutablePointer<Float>, scale: Float = 1
    ) {
        for j in 0..<count { x[Int(indices[j])] -= scale * values[j] }
    }

    /// After Δ is applied: v[I] = 0 (error feedback: what was sent leaves the residual) and
    /// u[I] = 0 (momentum masking), for I = the sent indices; nothing else is touched.
    public static func clearSent(
        indices: UnsafePointer<Int32>, count: Int, momentum u: UnsafeMutablePointer<Float>,
        error v: UnsafeMutablePointer<Float>
    ) {
        for j in 0..<count {
            let i = Int(indices[j])
            u[i] = 0
            v[i] = 0
        }
    }
}
