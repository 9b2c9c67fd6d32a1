import Atomics
import LapwingArena
import LapwingCore
import LapwingEngine

#if canImport(Glibc)
import Glibc
#endif

/// Two pinned threads on one cache line of node-bound memory: both adding to one atomic counter
/// (contention), and passing a value back and forth (the line's round trip between their caches).
enum SharingProbes {
    /// Millions of atomic adds per second by both threads together, and nanoseconds per add as
    /// each thread sees it, with thread 0 on `cpus[0]` and thread 1 on `cpus[1]`.
    static func contendedAdds(on line: NodeMemory, cpus: [Int], seconds: Double) throws(LapwingError) -> (
        mops: Double, nanosecondsPerAdd: Double
    ) {
        let results = try onCPUs(cpus) { _ in
            let counter = UnsafeAtomic<Int>(at: line.base.assumingMemoryBound(to: UnsafeAtomic<Int>.Storage.self))
            var adds = 0
            let t0 = monotonicSeconds()
            var elapsed = 0.0
            repeat {
                for _ in 0..<1024 { counter.wrappingIncrement(ordering: .relaxed) }
                adds += 1024
                elapsed = monotonicSeconds() - t0
            } while elapsed < seconds
            return (adds, elapsed)
        }
        let adds = results.map(\.0).reduce(0, +)
        let elapsed = results.map(\.1).max()!
        let perThread = results.map { $0.1 / Double($0.0) }.reduce(0, +) / Double(results.count)
        return (Double(adds) / elapsed / 1e6, perThread * 1e9)
    }

    /// Nanoseconds per round trip of a cache line: thread 0 writes an odd value, thread 1 waits
    /// for it and writes the next even one, thread 0 waits for that, and so on.
    static func pingPongNanoseconds(on line: NodeMemory, cpus: [Int], seconds: Double) throws(LapwingError) -> Double {
        let word = UnsafeAtomic<Int>(at: line.base.assumingMemoryBound(to: UnsafeAtomic<Int>.Storage.self))
        word.store(0, ordering: .relaxed)
        let stop = -1
        let results = try onCPUs(cpus) { k in
            if k == 1 {
                var expect = 1
                while true {
                    let v = word.load(ordering: .acquiring)
                    if v == stop { return 0.0 }
                    if v == expect {
                        word.store(expect + 1, ordering: .releasing)
                        expect += 2
                    }
                }
            }
            var v = 0, trips = 0
            let t0 = monotonicSeconds()
            while true {
                word.store(v + 1, ordering: .releasing)
                while word.load(ordering: .acquiring) != v + 2 {}
                v += 2
                trips += 1
                if trips % 256 == 0 {
                    let elapsed = monotonicSeconds() - t0
                    if elapsed >= seconds {
                        word.store(stop, ordering: .releasing)
                        return elapsed / Double(trips) * 1e9
                    }
                }
            }
        }
        return results[0]
    }
}
