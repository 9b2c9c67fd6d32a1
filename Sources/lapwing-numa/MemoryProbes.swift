import LapwingArena
import LapwingCore
import LapwingEngine

/// The loops `lapwing-numa bench` times on node-bound memory: streaming reads and writes, and a
/// pointer chase for the latency of one dependent load. Each runs whole passes until `seconds`
/// have gone by (at least one pass).
enum MemoryProbes {
    /// GB/s of reads: eight-float vector loads into four independent sums.
    static func readGBps(_ memory: NodeMemory, seconds: Double) -> Double {
        var bytes = 0
        var sink: Float = 0
        let t0 = monotonicSeconds()
        var elapsed = 0.0
        repeat {
            sink += readPass(UnsafeRawPointer(memory.base), memory.size)
            bytes += memory.size
            elapsed = monotonicSeconds() - t0
        } while elapsed < seconds
        blackHole(sink)
        return Double(bytes) / elapsed / 1e9
    }

    /// GB/s of writes: eight-float vector stores over the whole buffer.
    static func writeGBps(_ memory: NodeMemory, seconds: Double) -> Double {
        var bytes = 0
        var value: Float = 1
        let t0 = monotonicSeconds()
        var elapsed = 0.0
        repeat {
            writePass(memory.base, memory.size, value)
            value += 1
            bytes += memory.size
            elapsed = monotonicSeconds() - t0
        } while elapsed < seconds
        return Double(bytes) / elapsed / 1e9
    }

    /// Links the buffer's cache lines into one cycle in a random order (the first word of each
    /// line points to the next line), so that a chase defeats the prefetchers.
    static func linkChain(_ memory: NodeMemory, seed: UInt64) {
        let lines = memory.size / lineBytes
        var order = Array(0..<lines)
        var rng = SeededGenerator(seed: seed)
        order.shuffle(using: &rng)
        for k in 0..<lines {
            let here = memory.base + order[k] * lineBytes
            let next = memory.base + order[(k + 1) % lines] * lineBytes
            here.storeBytes(of: UnsafeRawPointer(next), as: UnsafeRawPointer.self)
        }
    }

    /// Nanoseconds per dependent load along the chain `linkChain` made.
    static func chaseNanoseconds(_ memory: NodeMemory, seconds: Double) -> Double {
        let step = 1 << 16
        var loads = 0
        var p = UnsafeRawPointer(memory.base)
        let t0 = monotonicSeconds()
        var elapsed = 0.0
        repeat {
            p = chase(p, step)
            loads += step
            elapsed = monotonicSeconds() - t0
        } while elapsed < seconds
        blackHole(p)
        return elapsed / Double(loads) * 1e9
    }

    static let lineBytes = 64

    @inline(never)
    private static func readPass(_ p: UnsafeRawPointer, _ bytes: Int) -> Float {
        var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
        var i = 0
        while i + 128 <= bytes {
            a0 += p.load(fromByteOffset: i, as: SIMD8<Float>.self)
            a1 += p.load(fromByteOffset: i + 32, as: SIMD8<Float>.self)
            a2 += p.load(fromByteOffset: i + 64, as: SIMD8<Float>.self)
            a3 += p.load(fromByteOffset: i + 96, as: SIMD8<Float>.self)
            i += 128
        }
        return ((a0 + a1) + (a2 + a3)).sum()
    }

    @inline(never)
    private static func writePass(_ p: UnsafeMutableRawPointer, _ bytes: Int, _ value: Float) {
        let v = SIMD8<Float>(repeating: value)
        var i = 0
        while i + 32 <= bytes {
            p.storeBytes(of: v, toByteOffset: i, as: SIMD8<Float>.self)
            i += 32
        }
    }

    @inline(never)
    private static func chase(_ start: UnsafeRawPointer, _ n: Int) -> UnsafeRawPointer {
        var p = start
        for _ in 0..<n { p = p.load(as: UnsafeRawPointer.self) }
        return p
    }
}

/// Keeps a value alive so that the loop computing it is not optimised away.
@inline(never) @_optimize(none)
func blackHole<T>(_ value: T) {
    withExtendedLifetime(value) {}
}
