import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// LAP-SGD's averager process (design section 5): whenever every replica has moved `H`
/// node-level steps since the last round, it runs a non-blocking in-place averaging round
/// (`AveragingKernel`). H is 1 during the averaging warm-up, then `period`. It never makes a
/// worker wait; between rounds it sleeps briefly instead of spinning, so it costs little when
/// it shares a core. Each round's bytes are counted, and those of replicas on another NUMA node
/// than the averager's as crossing nodes. The round itself is exact (`ExactAveragingRound`) or
/// compressed (`CompressedAveragingRound`, with `--compress`).
struct Averager: Coordinator {
    let role = "averager"
    /// A replacement goes on from the counters in its slot; its first round (exact or
    /// compressed) needs nothing else. (A compressed round's anchor restarts at the replicas'
    /// average, which the round keeps invariant.)
    let canBeReplaced = true
    let shared: SharedState
    let replicaWorkers: [[Int]]
    let totalSamples: Int
    let slot: Int
    let period: Int
    let warmup: Double
    var body: any AveragingRound

    init(_ c: CoordinatorContext, period: Int, warmup: Double) {
        shared = c.shared
        replicaWorkers = c.replicaWorkers
        totalSamples = c.totalSamples
        slot = c.slot
        self.period = period
        self.warmup = warmup
        body = c.compression.map { CompressedAveragingRound(c, $0) } ?? ExactAveragingRound(c)
    }

    /// Node-level steps between two rounds at training progress `progress`.
    func interval(at progress: Double) -> Int { progress < warmup ? 1 : period }

    mutating func run() {
        defer { body.deallocate() }
        if body.niceness > 0 { setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, body.niceness) }
        var (bytes, crossNode) = shared.exchanged(slot: slot)
        var last = replicaWorkers.map { shared.steps(of: $0) }
        var (rounds, seconds) = shared.roundStats(slot: slot)
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
            let moved = body.round(progress: Double(done) / Double(totalSamples))
            seconds += monotonicSeconds() - t0
            rounds += 1
            bytes += moved.bytes
            crossNode += moved.crossNode
            last = now
            shared.recordRounds(slot: slot, rounds: rounds, seconds: seconds)
            shared.recordExchange(slot: slot, bytes: bytes, crossNode: crossNode)
        }
    }
}

/// One averaging round of the averager over every replica: the bytes it moved, and those across
/// NUMA nodes.
protocol AveragingRound {
    mutating func round(progress: Double) -> (bytes: Int, crossNode: Int)
    func deallocate()
    /// The averager's nice value (0: as the workers). A round that costs much CPU lowers its
    /// process's priority, so that on a core it shares with a worker the worker goes first.
    var niceness: Int32 { get }
}

extension AveragingRound {
    var niceness: Int32 { 0 }
}

/// The exact round (`AveragingKernel`): every replica read and written once.
struct ExactAveragingRound: AveragingRound {
    let kernel: AveragingKernel
    /// Bytes of one round in replicas on another node than the averager's.
    let crossNodeBytesPerRound: Int

    init(_ c: CoordinatorContext) {
        kernel = AveragingKernel(replicas: (0..<c.replicaWorkers.count).map { c.shared.replica($0) }, count: c.parameterCount)
        let remote = c.replicaNodes.filter { $0 >= 0 && c.node >= 0 && $0 != c.node }.count
        crossNodeBytesPerRound = 2 * remote * c.parameterCount * MemoryLayout<Float>.stride
    }

    func round(progress: Double) -> (bytes: Int, crossNode: Int) {
        kernel.round()
        return (kernel.bytesPerRound, crossNodeBytesPerRound)
    }

    func deallocate() { kernel.deallocate() }
}

/// Seconds on the monotonic clock.
public func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
