import LapwingCore
import LapwingData
import LapwingModels

#if canImport(Glibc)
import Glibc
#endif

// Quick probe; replaced by the full benchmark once the data readers land.
func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
let choice = try BLAS.setUp()
print(choice)
for b in [16, 64] {
    let model = try FeedForwardModel(spec: .parse("mlp:784-256-10"), features: 784, classes: 10)
    var params = [Float](repeating: 0, count: model.parameterCount)
    params.withUnsafeMutableBufferPointer { model.initialize($0, seed: 1) }
    var buf = BatchBuffer(cols: 784, sparse: false, capacity: b)
    var rng = SeededGenerator(seed: 1)
    let row = (0..<784).map { _ in rng.nextUnitFloat() }
    for i in 0..<b { row.withUnsafeBufferPointer { buf.append(dense: $0, label: Float(i % 10)) } }
    let ws = model.makeWorkspace(batchCapacity: b)
    let g = model.makeGradientBuffer()
    var n = 0
    let t0 = now()
    while now() - t0 < 2 {
        for _ in 0..<50 { buf.withBatch { _ = model.gradient(params: params, batch: $0, into: g, workspace: ws) } }
        n += 50 * b
    }
    print("batch \(b): \(Double(n) / (now() - t0)) samples/s")
}
