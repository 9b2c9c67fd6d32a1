import Foundation
import LapwingCore
import LapwingData
import LapwingEngine
import LapwingModels

// lapwing-bench partial-step [--seconds S] [--batch B]
// lpp-sgd's partial step against a full one, on one core: for each model and W, the time of a
// full step (gather + gradient + SGD update of every parameter) and of a partial step for each
// of the W blocks (gather + partial gradient + update of the block), measured interleaved so
// that both see the same machine noise. One JSON object on stdout.

/// Microseconds per step of a full step and of each block's partial step.
func partialStepCost(model: FeedForwardModel, data: Dataset, batch: Int, workers: Int, seconds: Double) -> [String: Any] {
    let d = model.parameterCount
    let params = UnsafeMutablePointer<Float>.allocate(capacity: d)
    defer { params.deallocate() }
    model.initialize(UnsafeMutableBufferPointer(start: params, count: d), seed: 1)
    var buffer = BatchBuffer(cols: data.cols, sparse: data.isSparse, capacity: batch)
    let ws = model.makeWorkspace(batchCapacity: batch)
    let grad = model.makeGradientBuffer()
    let blocks = model.partition(into: workers)
    var rng = SeededGenerator(seed: 9)
    var rows = [Int](repeating: 0, count: batch)
    let lr: Float = 1e-4
    // Index 0: the full step; 1...W: block k-1's partial step.
    var time = [Double](repeating: 0, count: workers + 1)
    var steps = [Int](repeating: 0, count: workers + 1)
    let g = grad.values
    let t0 = monotonicSeconds()
    while monotonicSeconds() - t0 < seconds {
        for which in 0...workers {
            let start = monotonicSeconds()
            for _ in 0..<16 {
                for k in 0..<batch { rows[k] = rng.nextIndex(data.rows) }
                data.gather(rows: rows, into: &buffer)
                if which == 0 {
                    _ = buffer.withBatch { model.gradient(params: params, batch: $0, into: grad, workspace: ws) }
                    for i in 0..<d { params[i] -= lr * g[i] }
                } else {
                    let block = blocks[which - 1]
                    _ = buffer.withBatch {
                        model.partialGradient(params: params, batch: $0, block: block, into: grad, workspace: ws)
                    }
                    for i in block { params[i] -= lr * g[i] }
                }
            }
            time[which] += monotonicSeconds() - start
            steps[which] += 16
        }
    }
    let full = time[0] / Double(steps[0]) * 1e6
    let perBlock: [[String: Any]] = blocks.enumerated().map { k, block in
        let partial = time[k + 1] / Double(steps[k + 1]) * 1e6
        let layers = model.layers.enumerated().filter { block.overlaps($0.element.weightOffset..<($0.element.biasOffset + $0.element.outputs)) }
            .map(\.offset)
        return [
            "block": k, "start": block.lowerBound, "end": block.upperBound, "parameters": block.count, "layers": layers,
            "partial_us": (partial * 10).rounded() / 10, "ratio_to_full": (partial / full * 1000).rounded() / 1000,
        ]
    }
    return [
        "model": model.spec.name, "parameters": d, "batch": batch, "workers": workers,
        "full_us": (full * 10).rounded() / 10, "blocks": perBlock,
    ]
}

func runPartialStepBench(_ arguments: ArraySlice<String>) -> Int32 {
    var seconds = 2.0, batch = 16
    var rest = arguments
    while let a = rest.popFirst() {
        switch (a, rest.popFirst()) {
        case ("--seconds", let v?) where Double(v).map({ $0 > 0 }) == true: seconds = Double(v)!
        case ("--batch", let v?) where Int(v).map({ $0 > 0 }) == true: batch = Int(v)!
        default:
            writeError("usage: lapwing-bench partial-step [--seconds S>0] [--batch B>0]\n")
            return 2
        }
    }
    do {
        let blas = try BLAS.setUp()
        let (fashion, _) = try DataSpec.parse("idx:/usr/share/datasets/fashion-mnist").load()
        var cases: [[String: Any]] = []
        for (name, workers) in [("mlp:784-256-10", 2), ("mlp:784-256-10", 4), ("mlp:784-512-512-10", 4)] {
            writeError("lapwing-bench: partial steps of \(name), \(workers) blocks\n")
            let model = try FeedForwardModel(spec: .parse(name), features: 784, classes: 10)
            cases.append(partialStepCost(model: model, data: fashion, batch: batch, workers: workers, seconds: seconds))
        }
        let report: [String: Any] = ["blas": blas.corename, "data": "fashion-mnist", "partial_steps": cases]
        let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
        print(String(decoding: json, as: UTF8.self))
        return 0
    } catch {
        writeError("lapwing-bench partial-step: \(error)\n")
        return 1
    }
}
