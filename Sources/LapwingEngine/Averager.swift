import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// The averager process of the replica-based asynchronous algorithms (LAP-SGD, design section
/// 5): whenever every replica has moved `H` node-level steps since the last round, it runs a
/// non-blocking in-place averaging round. H is 1 during the averaging warm-up, then `period`.
/// It never makes a worker wait; between rounds it sleeps briefly instead of spinning, so it
/// costs little when it shares a core.
struct Averager {
    let spec: JobSpec
    let shared: SharedState
    let replicaWorkers: [[Int]]
    let totalSamples: Int
    let slot: Int

    func run() {
        let kernel = AveragingKernel(
            replicas: (0..<replicaWorkers.count).map { shared.replica($0) }, count: shared.parameterCount)
        defer { kernel.deallocate() }
        var last = replicaWorkers.map { shared.steps(of: $0) }
        var rounds = 0
        var seconds = 0.0
        while shared.waitWhilePaused() {
            let done = shared.totalSamples()
            if done >= totalSamples { break }
            let h = spec.averaging.interval(at: Double(done) / Double(totalSamples))
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
            shared.recordAveraging(slot: slot, rounds: rounds, bytes: rounds * kernel.bytesPerRound, seconds: seconds)
        }
    }
}

/// Seconds on the monotonic clock.
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
