import LapwingCore

/// `--compress sketch`: Sketched SGD (Ivkin et al., NeurIPS 2019; `SketchedSGD`, `CountSketch`).
/// A round has two phases:
///
/// 1. each participant writes the count sketch of its contribution (rows x columns floats, hashes
///    seeded from the job's seed: the seed travels in the header and the reader checks it);
/// 2. every participant sums the sketches in participant order, takes the `candidates` largest
///    estimates, and writes its exact values there (the paper's second round);
///
/// then the k candidates of largest summed value are what is sent: Q_p is p's contribution on
/// those k coordinates, zero elsewhere. Whatever is not sent stays with the participant (error
/// feedback: the exchange paths keep it in the replica, or in the error accumulator of the
/// gradient form). Defaults scale with the model (`SketchKnobs`): k = d/1000, 5 rows, 20k
/// columns, 4k candidates, about d/9.6 floats per participant and round.
struct SketchCompressor: Compressor {
    static let name = "sketch"
    static let phases = 2
    static let summary = "Sketched SGD: count sketch, heavy hitters, exact second round for the top-k (Ivkin et al. 2019)"
    static let knobs: [Knob] = [
        Knob("sketch-k", default: 0, range: 0...1e9, integer: true, help: "coordinates sent per round (0: d/1000)"),
        Knob("sketch-rows", default: 5, range: 1...64, integer: true, help: "rows of the count sketch"),
        Knob("sketch-columns", default: 0, range: 0...1e9, integer: true, help: "columns of the count sketch (0: 20k)"),
        Knob("sketch-candidates", default: 0, range: 0...1e9, integer: true, help: "candidates of the exact second round (0: 4k)"),
    ]

    let k: Int?, rows: Int, columns: Int?, candidates: Int?

    init(knobs: Knobs) {
        func auto(_ name: String) -> Int? { knobs.int(name) == 0 ? nil : knobs.int(name) }
        k = auto("sketch-k")
        rows = knobs.int("sketch-rows")
        columns = auto("sketch-columns")
        candidates = auto("sketch-candidates")
    }

    func codec(dimension d: Int, participants: Int, seed: UInt64) throws(LapwingError) -> any ExchangeCodec {
        let knobs = SketchKnobs(dimension: d, k: k, rows: rows, columns: columns, candidates: candidates)
        let bytes = ExchangeBuffer.headerBytes + knobs.floatsPerWorker * MemoryLayout<Float>.stride
        guard bytes < d * MemoryLayout<Float>.stride else {
            throw LapwingError(
                .invalidArgument,
                "--compress sketch: \(knobs.rows) x \(knobs.columns) cells and \(knobs.candidates) candidates are \(knobs.floatsPerWorker) floats a round, not fewer than the model's \(d)",
                detail: "lower --sketch-k, --sketch-rows or --sketch-columns (the defaults send about d/9.6)")
        }
        return SketchCodec(knobs: knobs, dimension: d, seed: seed ^ 0x5EED_5CE7_C400)
    }
}

/// The two-phase codec of `SketchCompressor`.
final class SketchCodec: ExchangeCodec {
    let knobs: SketchKnobs
    let dimension: Int
    let seed: UInt64
    let phases = 2
    /// The sum of the participants' sketches (private cells).
    private let summed: CountSketch
    /// Candidates of the current round (ascending) and how many.
    private let candidates: UnsafeMutablePointer<Int32>
    private var candidateCount = 0
    /// The summed exact values at the candidates, and the positions (into the candidates) of the
    /// k sent.
    private let sums: UnsafeMutablePointer<Float>
    private let sent: UnsafeMutablePointer<Int32>
    private var sentCount = 0

    init(knobs: SketchKnobs, dimension: Int, seed: UInt64) {
        self.knobs = knobs
        self.dimension = dimension
        self.seed = seed
        summed = CountSketch(rows: knobs.rows, columns: knobs.columns, dimension: dimension, seed: seed)
        candidates = .allocate(capacity: knobs.candidates)
        sums = .allocate(capacity: knobs.candidates)
        sent = .allocate(capacity: knobs.k)
    }

    deinit {
        candidates.deallocate()
        sums.deallocate()
        sent.deallocate()
    }

    private var cellCount: Int { knobs.rows * knobs.columns }

    private func cells(_ b: ExchangeBuffer) -> UnsafeMutablePointer<Float> { b.payload.assumingMemoryBound(to: Float.self) }
    private func values(_ b: ExchangeBuffer) -> UnsafeMutablePointer<Float> { cells(b) + cellCount }

    func prepare(phase: Int, all: [ExchangeBuffer]) {
        guard phase == 1 else { return }
        summed.clear()
        for b in all {
            precondition(b.tag == seed, "SketchCodec: a sketch hashed with another seed")
            CountSketch.add(cells(b), into: summed.cells, count: cellCount)
        }
        candidateCount = summed.topCandidates(k: knobs.candidates, into: candidates)
    }

    func write(phase: Int, contribution c: UnsafePointer<Float>, into mine: ExchangeBuffer, participant p: Int, progress: Double) {
        if phase == 0 {
            let sketch = CountSketch(rows: knobs.rows, columns: knobs.columns, dimension: dimension, seed: seed, cells: cells(mine))
            SketchedSGD.sketch(error: c, count: dimension, into: sketch)
            mine.tag = seed
            mine.width = 0
            mine.used = ExchangeBuffer.headerBytes + cellCount * MemoryLayout<Float>.stride
        } else {
            SketchedSGD.gather(c, at: candidates, count: candidateCount, into: values(mine))
            mine.used = ExchangeBuffer.headerBytes + (cellCount + candidateCount) * MemoryLayout<Float>.stride
        }
    }

    func reduce(all: [ExchangeBuffer]) {
        sums.update(repeating: 0, count: candidateCount)
        for b in all { CountSketch.add(values(b), into: sums, count: candidateCount) }
        let k = min(knobs.k, candidateCount)
        guard k > 0 else {
            sentCount = 0
            return
        }
        var heap = TopMagnitudeHeap(capacity: k)
        for j in 0..<candidateCount { heap.offer(abs(sums[j]), Int32(j)) }
        sentCount = heap.drainSorted(into: sent)
    }

    func addSum(_ all: [ExchangeBuffer], scale: Float, into target: UnsafeMutablePointer<Float>) {
        for j in 0..<sentCount {
            let pos = Int(sent[j])
            target[Int(candidates[pos])] += scale * sums[pos]
        }
    }

    func addOwn(_ mine: ExchangeBuffer, scale: Float, into target: UnsafeMutablePointer<Float>) {
        let v = values(mine)
        for j in 0..<sentCount {
            let pos = Int(sent[j])
            target[Int(candidates[pos])] += scale * v[pos]
        }
    }

    /// The coordinates sent in the last round (for momentum masking in the gradient form).
    func sentIndices(_ body: (Int) -> Void) {
        for j in 0..<sentCount { body(Int(candidates[Int(sent[j])])) }
    }

    var sendsSubset: Bool { true }
    func forEachSent(_ body: (Int) -> Void) { sentIndices(body) }

    /// Every participant reads every sketch and every candidate's values, whatever its range.
    var rangeAlignment: Int { 1 }
    func bytesRead(_ b: ExchangeBuffer, range: Range<Int>) -> Int { b.used }

    func addSum(_ all: [ExchangeBuffer], scale: Float, range: Range<Int>, into target: UnsafeMutablePointer<Float>) {
        for j in 0..<sentCount {
            let pos = Int(sent[j])
            let i = Int(candidates[pos])
            if range.contains(i) { target[i] += scale * sums[pos] }
        }
    }
}
