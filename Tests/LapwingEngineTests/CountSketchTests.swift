import LapwingCore
import Testing

@testable import LapwingEngine

@Suite struct CountSketchTests {
    /// Top 1% of a 1M vector carrying 50% of the squared norm (heavy |x| uniform in [1, 2], the
    /// rest uniform in [-0.266, 0.266]): the paper's pipeline with the default columns and
    /// candidates for k = 10,000 (sketch, candidates from the sketch, exact values, top k) finds
    /// >= 99% of them. The sketch's own top k is reported beside it.
    @Test func recoversPlantedHeavyHitters() {
        let d = 1_000_000, k = 10_000
        var rng = SeededGenerator(seed: 42)
        let v = UnsafeMutablePointer<Float>.allocate(capacity: d)
        defer { v.deallocate() }
        let light: Float = 0.266
        for i in 0..<d { v[i] = (rng.nextUnitFloat() * 2 - 1) * light }
        var heavy = Set<Int32>()
        while heavy.count < k { heavy.insert(Int32(rng.next() % UInt64(d))) }
        var heavyMass = 0.0, total = 0.0
        for i in heavy.sorted() {  // a Set's order differs between processes
            let m = 1 + rng.nextUnitFloat()
            v[Int(i)] = rng.next() & 1 == 0 ? m : -m
        }
        for i in 0..<d { total += Double(v[i] * v[i]) }
        for i in heavy { heavyMass += Double(v[Int(i)] * v[Int(i)]) }
        #expect(heavyMass / total > 0.49 && heavyMass / total < 0.51)

        let knobs = SketchKnobs(dimension: d, k: k)
        #expect(knobs.rows == 5 && knobs.columns == 200_000 && knobs.candidates == 40_000)
        let sketch = CountSketch(rows: knobs.rows, columns: knobs.columns, dimension: d, seed: 7)
        SketchedSGD.sketch(error: v, count: d, into: sketch)

        let direct = sketch.topCandidates(k: k)
        let directRecall = Double(direct.filter { heavy.contains($0) }.count) / Double(k)

        let cand = SketchedSGD.candidates(summed: sketch, knobs: knobs)
        #expect(cand.count == knobs.candidates)
        var exact = [Float](repeating: 0, count: cand.count)
        var idx = [Int32](repeating: 0, count: k), val = [Float](repeating: 0, count: k)
        let n = cand.withUnsafeBufferPointer { c in
            exact.withUnsafeMutableBufferPointer { SketchedSGD.gather(v, at: c.baseAddress!, count: c.count, into: $0.baseAddress!) }
            return exact.withUnsafeBufferPointer { e in
                idx.withUnsafeMutableBufferPointer { oi in
                    val.withUnsafeMutableBufferPointer { ov in
                        SketchedSGD.selectTopK(
                            candidates: c.baseAddress!, values: e.baseAddress!, count: c.count, k: k,
                            outIndices: oi.baseAddress!, outValues: ov.baseAddress!)
                    }
                }
            }
        }
        #expect(n == k)
        let recall = Double(idx.filter { heavy.contains($0) }.count) / Double(k)
        for j in 0..<n { #expect(val[j] == v[Int(idx[j])]) }
        print("count sketch recall: pipeline (candidates 4k, exact top k) \(recall), sketch top k alone \(directRecall)")
        #expect(recall >= 0.99)
    }

    /// sketch(a) + sketch(b) == sketch(a + b), cell for cell (integer-valued floats: exact sums).
    @Test func sketchesAreLinear() {
        let d = 10_000 + 5
        var rng = SeededGenerator(seed: 3)
        var a = [Float](repeating: 0, count: d), b = a, s = a
        for i in 0..<d {
            a[i] = Float(Int(rng.next() % 201) - 100)
            b[i] = Float(Int(rng.next() % 201) - 100)
            s[i] = a[i] + b[i]
        }
        let sa = CountSketch(rows: 5, columns: 257, dimension: d, seed: 11)
        let sb = CountSketch(rows: 5, columns: 257, dimension: d, seed: 11)
        let ss = CountSketch(rows: 5, columns: 257, dimension: d, seed: 11)
        sa.accumulate(a, count: d)
        sb.accumulate(b, count: d)
        ss.accumulate(s, count: d)
        sa.merge(adding: sb)
        for c in 0..<(5 * 257) where sa.cells[c] != ss.cells[c] {
            Issue.record("cell \(c): \(sa.cells[c]) != \(ss.cells[c])")
        }
        // Accumulating in two segments is the same as in one.
        let seg = CountSketch(rows: 5, columns: 257, dimension: d, seed: 11)
        s.withUnsafeBufferPointer { p in
            seg.accumulate(p.baseAddress!, count: 4099)
            seg.accumulate(p.baseAddress! + 4099, count: d - 4099, startingAt: 4099)
        }
        for c in 0..<(5 * 257) where seg.cells[c] != ss.cells[c] {
            Issue.record("segmented cell \(c): \(seg.cells[c]) != \(ss.cells[c])")
        }
    }

    /// Two instances with the same seed (one over a caller's buffer) hash every coordinate alike
    /// and build identical cells; another seed hashes differently. The SIMD and scalar paths agree.
    @Test func sameSeedHashesIdentically() {
        let d = 4096 + 3, rows = 5, cols = 1000
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: CountSketch.bytes(rows: rows, columns: cols) / 4)
        defer { buffer.deallocate() }
        let x = CountSketch(rows: rows, columns: cols, dimension: d, seed: 0xDEAD_BEEF)
        let y = CountSketch(rows: rows, columns: cols, dimension: d, seed: 0xDEAD_BEEF, cells: buffer)
        y.clear()
        let z = CountSketch(rows: rows, columns: cols, dimension: d, seed: 0xDEAD_BEEF + 1)
        var differ = 0
        for r in 0..<rows {
            for i in 0..<d {
                let hx = x.hash(row: r, index: i), hy = y.hash(row: r, index: i), hz = z.hash(row: r, index: i)
                #expect(hx == hy)
                #expect(hx.bucket >= 0 && hx.bucket < cols)
                if hx != hz { differ += 1 }
            }
        }
        #expect(differ > rows * d * 9 / 10)
        var rng = SeededGenerator(seed: 5)
        let v = (0..<d).map { _ in rng.nextUnitFloat() - 0.5 }
        x.accumulate(v, count: d)
        y.accumulate(v, count: d)
        var scalar = [Float](repeating: 0, count: rows * cols)
        for r in 0..<rows {
            for i in 0..<d {
                let h = x.hash(row: r, index: i)
                scalar[r * cols + h.bucket] += h.sign * v[i]
            }
        }
        for c in 0..<(rows * cols) {
            if x.cells[c] != y.cells[c] { Issue.record("cell \(c) differs between instances") }
            if abs(x.cells[c] - scalar[c]) > 1e-4 { Issue.record("cell \(c): \(x.cells[c]) vs scalar \(scalar[c])") }
        }
        // Buckets are spread evenly: no row's fullest column holds more than twice its share.
        for r in 0..<rows {
            var load = [Int](repeating: 0, count: cols)
            for i in 0..<(cols * 100) { load[x.hash(row: r, index: i).bucket] += 1 }
            #expect(load.max()! < 200 && load.min()! > 50)
        }
    }

    /// With no collisions to speak of the estimate is the value; topCandidates is the k largest
    /// |estimate| (against a full sort of `estimate`), ascending.
    @Test func estimatesAndTopCandidatesMatchAFullSort() {
        let d = 3001
        var rng = SeededGenerator(seed: 9)
        let v = (0..<d).map { _ in rng.nextUnitFloat() * 2 - 1 }
        for rows in [4, 5] {
            let s = CountSketch(rows: rows, columns: 64, dimension: d, seed: 1)
            s.accumulate(v, count: d)
            let est = (0..<d).map { s.estimate($0) }
            let order = (0..<d).sorted { abs(est[$0]) > abs(est[$1]) || (abs(est[$0]) == abs(est[$1]) && $0 < $1) }
            for k in [1, 50, 777, d, d + 5] {
                let got = s.topCandidates(k: k)
                let want = order.prefix(k).map { Int32($0) }.sorted()
                #expect(got == want, "rows \(rows) k \(k)")
            }
        }
        let big = CountSketch(rows: 5, columns: 1 << 16, dimension: 100, seed: 2)
        big.accumulate(v, count: 100)
        for i in 0..<100 { #expect(abs(big.estimate(i) - v[i]) < 1e-6) }
    }

    /// Error feedback: with rho = 0, over many rounds of 2 workers, the sum of applied updates
    /// plus the workers' residuals is the sum of the gradients (exactly, up to float rounding),
    /// and the residual's largest coordinate levels off while the sum grows; with momentum (and
/// momentum masking) it levels off too.
    @Test(arguments: [Float(0), 0.9])
    func errorFeedbackTracksTheGradients(rho: Float) {
        let d = 10_000, workers = 2, rounds = 400
        let knobs = SketchKnobs(dimension: d, k: 200)
        var rng = SeededGenerator(seed: 13)
        let mean = (0..<d).map { _ in rng.nextUnitFloat() - 0.5 }
        var u = [[Float]](repeating: [Float](repeating: 0, count: d), count: workers), v = u
        var applied = [Double](repeating: 0, count: d), truth = applied
        var g = [Float](repeating: 0, count: d)
        let sketches = (0..<workers).map { _ in CountSketch(rows: knobs.rows, columns: knobs.columns, dimension: d, seed: 77) }
        var residualEarly = 0.0, residualLate = 0.0
        for t in 0..<rounds {
            for w in 0..<workers {
                for i in 0..<d { g[i] = mean[i] + (rng.nextUnitFloat() - 0.5); truth[i] += Double(g[i]) }
                SketchedSGD.accumulateMomentum(gradient: g, momentum: &u[w], error: &v[w], count: d, rho: rho)
                SketchedSGD.sketch(error: v[w], count: d, into: sketches[w])
            }
            for w in 1..<workers { sketches[0].merge(adding: sketches[w]) }
            let cand = SketchedSGD.candidates(summed: sketches[0], knobs: knobs)
            var summed = [Float](repeating: 0, count: cand.count), part = summed
            for w in 0..<workers {
                SketchedSGD.gather(v[w], at: cand, count: cand.count, into: &part)
                for j in 0..<cand.count { summed[j] += part[j] }
            }
            var idx = [Int32](repeating: 0, count: knobs.k), val = [Float](repeating: 0, count: knobs.k)
            let n = SketchedSGD.selectTopK(
                candidates: cand, values: summed, count: cand.count, k: knobs.k, outIndices: &idx, outValues: &val)
            #expect(n == knobs.k)
            for j in 0..<n { applied[Int(idx[j])] += Double(val[j]) }
            for w in 0..<workers { SketchedSGD.clearSent(indices: idx, count: n, momentum: &u[w], error: &v[w]) }
            // The residual's largest coordinate (summed over workers).
            var rmax = 0.0
            for i in 0..<d { rmax = max(rmax, abs(Double(v[0][i]) + Double(v[1][i]))) }
            if t >= rounds / 4 && t < rounds / 2 { residualEarly = max(residualEarly, rmax) }
            if t >= 3 * rounds / 4 { residualLate = max(residualLate, rmax) }
        }
        var truthMax = 0.0, gap = 0.0
        for i in 0..<d {
            truthMax = max(truthMax, abs(truth[i]))
            if rho == 0 {
                let e = applied[i] + Double(v[0][i]) + Double(v[1][i]) - truth[i]
                gap = max(gap, abs(e))
            }
        }
        print("error feedback rho \(rho): residual max|v| rounds 100-199 \(residualEarly), 300-399 \(residualLate); max|sum g| \(truthMax), invariant gap \(gap)")
        // Bounded: the residual's largest coordinate levels off (it does not grow with the rounds
        // as the sum of the gradients does: that doubles from the second quarter to the last).
        #expect(residualLate < 1.25 * residualEarly)
        if rho == 0 { #expect(gap < 1e-3 * truthMax) }
    }

    /// Momentum masking and error feedback zero exactly the sent coordinates; the update touches
    /// exactly them.
    @Test func maskingZeroesExactlyTheSentCoordinates() {
        let d = 1000
        var rng = SeededGenerator(seed: 21)
        var u = (0..<d).map { _ in rng.nextUnitFloat() + 0.5 }, v = (0..<d).map { _ in rng.nextUnitFloat() + 0.5 }
        let u0 = u, v0 = v
        let sent: [Int32] = [0, 3, 17, 500, 998, 999]
        SketchedSGD.clearSent(indices: sent, count: sent.count, momentum: &u, error: &v)
        var x = [Float](repeating: 1, count: d)
        let delta: [Float] = sent.map { Float($0) + 1 }
        SketchedSGD.applyUpdate(indices: sent, values: delta, count: sent.count, to: &x, scale: 0.5)
        let s = Set(sent.map(Int.init))
        for i in 0..<d {
            if s.contains(i) {
                #expect(u[i] == 0 && v[i] == 0)
                #expect(x[i] == 1 - 0.5 * (Float(i) + 1))
            } else {
                #expect(u[i] == u0[i] && v[i] == v0[i] && x[i] == 1)
            }
        }
    }

    /// The defaults scale with the model: k = d/1000, rows 5, columns 20k, candidates 4k.
    @Test func defaultKnobsScaleWithTheModel() {
        let mlp = SketchKnobs(dimension: 203_530)
        #expect(mlp.k == 203 && mlp.rows == 5 && mlp.columns == 4060 && mlp.candidates == 812)
        #expect(Double(203_530) / Double(mlp.floatsPerWorker) > 8)
        let tiny = SketchKnobs(dimension: 10)
        #expect(tiny.k == 1 && tiny.columns == 20 && tiny.candidates == 4)
        let custom = SketchKnobs(dimension: 1_000_000, k: 5000, rows: 7)
        #expect(custom.columns == 100_000 && custom.rows == 7 && custom.candidates == 20_000)
    }
}
