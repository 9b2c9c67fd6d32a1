import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// LAP-SGD's averager process (design section 5): whenever every replica has moved `H`
/// node-level steps since the last round, it runs a non-blocking in-place averaging round
/// (`AveragingKernel`). H is 1 during the averaging warm-up, then `period`. It never makes a
/// worker wait; between rounds it sleeps briefly instead of spinning, so it costs little when
/// it shares a core. Each round's bytes are counted, and those of replicas on another NUMA node
/// than the averager's as crossing nodes.
struct Averager: Coordinator {
    let role = "averager"
    let shared: SharedState
    let replicaWorkers: [[Int]]
    let totalSamples: Int
    let slot: Int
    let period: Int
    let warmup: Double
    /// Bytes of one round in replicas on another node than the averager's.
    let crossNodeBytesPerRound: Int

    init(_ c: CoordinatorContext, period: Int, warmup: Double) {
        shared = c.shared
        replicaWorkers = c.replicaWorkers
        totalSamples = c.totalSamples
        slot = c.slot
        self.period = period
        self.warmup = warmup
        let remote = c.replicaNodes.filter { $0 >= 0 && c.node >= 0 && $0 != c.node }.count
        crossNodeBytesPerRound = 2 * remote * c.parameterCount * MemoryLayout<Float>.stride
    }

    /// Node-level steps between two rounds at training progress `progress`.
    func interval(at progress: Double) -> Int { progress < warmup ? 1 : period }

    mutating func run() {
        let kernel = AveragingKernel(
            replicas: (0..<replicaWorkers.count).map { shared.replica($0) }, count: shared.parameterCount)
        defer { kernel.deallocate() }
        var last = replicaWorkers.map { shared.steps(of: $0) }
        var rounds = 0
        var seconds = 0.0
        while shared.waitWhilePaused() {
            let done = shared.totalSamples()
            if done >= totalSamples { break }
            let h = interval(at: Double(done) / Double(totalSamples))
            let now = replicaWorkers.map { shared.steps(of: $0) }
            guard zip(now, last).allSatisfy({ $0 - $1 >= h }) else {
                var ts = timespec(tv_sec: 0, tv_nsec: 50_000)
                nanosleep(&ts, nil)
                continue
            }
            let t0 = monotonicSeconds()
            kernel.round()
            seconds += monotonicSeconds() - t0
            rounds += 1
            last = now
            shared.recordRounds(slot: slot, rounds: rounds, seconds: seconds)
            shared.recordExchange(
                slot: slot, bytes: rounds * kernel.bytesPerRound, crossNode: rounds * crossNodeBytesPerRound)
        }
    }
}

/// Seconds on the monotonic clock.
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
