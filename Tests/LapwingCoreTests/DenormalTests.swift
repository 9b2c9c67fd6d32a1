import CLapwing
import Foundation
import Synchronization
import Testing

/// Workers flush denormals to zero: a decaying momentum entry must reach 0, not crawl through
/// the denormal range at a microcode assist per multiply.
@Suite struct DenormalTests {
    /// Runs `body` on a thread of its own, so the mode set there touches no other test.
    func onFreshThread(_ body: @escaping @Sendable () -> Float) -> Float {
        let result = Mutex<Float>(.nan)
        let done = DispatchSemaphore(value: 0)
        let t = Thread {
            result.withLock { $0 = body() }
            done.signal()
        }
        t.start()
        done.wait()
        return result.withLock { $0 }
    }

    /// 0.9^k from 1e-30: after enough steps the value is below the smallest normal float.
    @inline(never)
    static func decay(_ start: Float, steps: Int) -> Float {
        var v = start
        for _ in 0..<steps { v *= 0.9 }
        return v
    }

    @Test func flushingTurnsDenormalResultsIntoZero() {
        let plain = onFreshThread { Self.decay(1e-30, steps: 200) }
        #expect(plain > 0 && plain < Float.leastNormalMagnitude, "without flushing the value is denormal: \(plain)")
        let flushed = onFreshThread {
            guard lw_flush_denormals() == 1 else { return -1 }
            return Self.decay(1e-30, steps: 200)
        }
        #expect(flushed == 0)
    }
}
