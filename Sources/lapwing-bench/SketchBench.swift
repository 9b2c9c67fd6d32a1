import Foundation
import LapwingCore
import LapwingEngine

#if canImport(Glibc)
import Glibc
#endif

// lapwing-bench sketch [--seconds S]
// The count sketch of Sketched SGD on one core, for the MLP's 203,530 and a 4.4M-parameter model
// with the default knobs (SketchKnobs(dimension:)): accumulate GB/s of the vector sketched (hashes
// computed on the fly), the same with per-row tables of d Int32 (bucket and sign precomputed), a
// memcpy of the same bytes, merge GB/s of the cells, and the time of heavy-hitter recovery
// (the `candidates` largest estimates).

func runSketchBench(_ arguments: ArraySlice<String>) -> Int32 {
    var seconds = 0.5
    var rest = arguments
    while let a = rest.popFirst() {
        switch (a, rest.popFirst()) {
        case ("--seconds", let v?) where Double(v).map({ $0 > 0 }) == true: seconds = Double(v)!
        default:
            writeError("usage: lapwing-bench sketch [--seconds S>0]  (per measurement)\n")
            return 2
        }
    }
    var cases: [[String: Any]] = []
    for d in [203_530, 4_400_000] { cases.append(sketchCase(d: d, seconds: seconds)) }
    let report: [String: Any] = ["bench": "sketch", "seconds_per_measurement": seconds, "cases": cases]
    do {
        let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys, .prettyPrinted])
        print(String(decoding: json, as: UTF8.self))
        return 0
    } catch {
        writeError("lapwing-bench sketch: \(error)\n")
        return 1
    }
}

/// Runs `body` repeatedly for about `seconds`; seconds per call (best of the batches of calls).
private func timePerCall(_ seconds: Double, _ body: () -> Void) -> Double {
    body()  // warm
    var best = Double.infinity
    let t0 = monotonicSeconds()
    var reps = 1
    while monotonicSeconds() - t0 < seconds {
        let t = monotonicSeconds()
        for _ in 0..<reps { body() }
        let dt = (monotonicSeconds() - t) / Double(reps)
        best = min(best, dt)
        if dt * Double(reps) < 0.02 { reps *= 2 }
    }
    return best
}

private func sketchCase(d: Int, seconds: Double) -> [String: Any] {
    let knobs = SketchKnobs(dimension: d)
    var rng = SeededGenerator(seed: 1)
    let v = UnsafeMutablePointer<Float>.allocate(capacity: d)
    let dst = UnsafeMutablePointer<Float>.allocate(capacity: d)
    defer { v.deallocate(); dst.deallocate() }
    for i in 0..<d { v[i] = rng.nextUnitFloat() - 0.5 }
    dst.initialize(repeating: 0, count: d)
    let sketch = CountSketch(rows: knobs.rows, columns: knobs.columns, dimension: d, seed: 3)
    let other = CountSketch(rows: knobs.rows, columns: knobs.columns, dimension: d, seed: 3)
    let bytes = Double(d * 4)
    let cellBytes = Double(CountSketch.bytes(rows: knobs.rows, columns: knobs.columns))

    let tAcc = timePerCall(seconds) {
        sketch.clear()
        sketch.accumulate(v, count: d)
    }
    let tCopy = timePerCall(seconds) { memcpy(dst, v, d * 4) }

    // The alternative: bucket and sign of every (row, coordinate) precomputed, d Int32 per row
    // (the bucket, with the sign in the top bit).
    let table = UnsafeMutablePointer<UInt32>.allocate(capacity: knobs.rows * d)
    defer { table.deallocate() }
    for r in 0..<knobs.rows {
        for i in 0..<d {
            let h = sketch.hash(row: r, index: i)
            table[r * d + i] = UInt32(h.bucket) | (h.sign < 0 ? 0x8000_0000 : 0)
        }
    }
    let cells = other.cells
    let cols = knobs.columns, rows = knobs.rows
    let tTable = timePerCall(seconds) {
        other.clear()
        var s = 0
        while s < d {
            let e = min(d, s + 2048)
            for r in 0..<rows {
                let row = cells + r * cols, t = table + r * d
                for i in s..<e {
                    let w = t[i]
                    row[Int(w & 0x7FFF_FFFF)] += Float(bitPattern: v[i].bitPattern ^ (w & 0x8000_0000))
                }
            }
            s = e
        }
    }
    var same = true
    for c in 0..<(rows * cols) where abs(other.cells[c] - sketch.cells[c]) > 1e-5 { same = false }

    let tMerge = timePerCall(seconds) { other.merge(adding: sketch) }
    let out = UnsafeMutablePointer<Int32>.allocate(capacity: knobs.candidates)
    defer { out.deallocate() }
    let tTop = timePerCall(seconds) { sketch.topCandidates(k: knobs.candidates, into: out) }

    func r3(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }
    return [
        "d": d, "k": knobs.k, "rows": rows, "columns": cols, "candidates": knobs.candidates,
        "sketch_bytes": Int(cellBytes), "compression_vs_dense": r3(bytes / Double(knobs.floatsPerWorker * 4)),
        "accumulate_ms": r3(tAcc * 1e3), "accumulate_gbps": r3(bytes / tAcc / 1e9),
        "accumulate_table_ms": r3(tTable * 1e3), "accumulate_table_gbps": r3(bytes / tTable / 1e9),
        "table_matches": same,
        "memcpy_ms": r3(tCopy * 1e3), "memcpy_gbps": r3(bytes / tCopy / 1e9),
        "merge_gbps_of_cells": r3(cellBytes / tMerge / 1e9),
        "top_candidates_ms": r3(tTop * 1e3),
    ]
}
