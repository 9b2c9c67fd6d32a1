import CLapwing
import LapwingArena
import LapwingCore
import LapwingEngine

#if canImport(Glibc)
import Glibc
#endif

/// The job's own hot loops on node-bound memory: LAP-SGD's averaging round (the real
/// `AveragingKernel`) beside a memcpy of the same bytes, and single-threaded GEMM through the BLAS
/// kernels Lapwing chose.
enum ComputeProbes {
    struct Averaging {
        var averagingGBps: Double
        var memcpyGBps: Double
        var rounds: Int
    }

    /// Averaging rounds over `replicas` (each of `count` floats, on its own node) interleaved with
    /// memcpys of each replica's bytes between two buffers on the replica's node, so that both move
    /// the same bytes from and to the same nodes and see the same machine noise.
    static func averaging(
        replicas: [NodeMemory], sources: [NodeMemory], targets: [NodeMemory], count: Int, seconds: Double
    ) -> Averaging {
        let kernel = AveragingKernel(
            replicas: replicas.map { $0.base.assumingMemoryBound(to: Float.self) }, count: count)
        defer { kernel.deallocate() }
        var averageTime = 0.0, copyTime = 0.0, rounds = 0
        repeat {
            var t = monotonicSeconds()
            kernel.round()
            averageTime += monotonicSeconds() - t
            t = monotonicSeconds()
            for (s, d) in zip(sources, targets) { memcpy(d.base, s.base, count * MemoryLayout<Float>.stride) }
            copyTime += monotonicSeconds() - t
            rounds += 1
        } while averageTime + copyTime < seconds
        // The round reads and writes every replica float once; the copies read and write as many.
        let bytes = Double(kernel.bytesPerRound * rounds)
        return Averaging(averagingGBps: bytes / averageTime / 1e9, memcpyGBps: bytes / copyTime / 1e9, rounds: rounds)
    }

    /// GFLOP/s of C = A B (row-major, M x K times K x N) on the calling thread, with A, B and C in
    /// `memory` (at least (MK + KN + MN) floats).
    static func gemmGFLOPs(m: Int, n: Int, k: Int, memory: NodeMemory, seconds: Double) -> Double {
        let f = memory.base.assumingMemoryBound(to: Float.self)
        let a = f, b = f + m * k, c = b + k * n
        for i in 0..<(m * k + k * n) { f[i] = Float(i % 17) * 0.01 }
        var calls = 0
        let t0 = monotonicSeconds()
        var elapsed = 0.0
        repeat {
            lw_sgemm(0, 0, Int32(m), Int32(n), Int32(k), 1, a, Int32(k), b, Int32(n), 0, c, Int32(n))
            calls += 1
            elapsed = monotonicSeconds() - t0
        } while elapsed < seconds
        return 2 * Double(m * n * k) * Double(calls) / elapsed / 1e9
    }
}
