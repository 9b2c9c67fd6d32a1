import LapwingCore
import Testing

@testable import LapwingEngine

@Suite struct AveragingKernelTests {
    /// With nothing moving during the round, every replica ends exactly at the average
    /// (up to float rounding), also across chunk boundaries.
    @Test(arguments: [1, 2, 3, 5])
    func roundLeavesEveryReplicaAtTheAverage(replicas: Int) {
        let d = 4096 * 2 + 37
        var rng = SeededGenerator(seed: UInt64(replicas))
        let buffers = (0..<replicas).map { _ -> UnsafeMutablePointer<Float> in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: d)
            for i in 0..<d { p[i] = rng.nextUnitFloat() * 4 - 2 }
            return p
        }
        defer { for b in buffers { b.deallocate() } }
        var mean = [Double](repeating: 0, count: d)
        for b in buffers { for i in 0..<d { mean[i] += Double(b[i]) / Double(replicas) } }
        let kernel = AveragingKernel(replicas: buffers, count: d)
        defer { kernel.deallocate() }
        let out = UnsafeMutablePointer<Float>.allocate(capacity: d)
        defer { out.deallocate() }
        kernel.average(into: out)
        kernel.round()
        for i in 0..<d {
            #expect(abs(Double(out[i]) - mean[i]) < 1e-5)
            for b in buffers where abs(Double(b[i]) - mean[i]) > 1e-5 {
                Issue.record("replica value \(b[i]) at \(i), average \(mean[i])")
                return
            }
        }
        #expect(kernel.bytesPerRound == 2 * replicas * d * 4)
    }
}
