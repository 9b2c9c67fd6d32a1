import CLapwing
import LapwingArena
import LapwingCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The engine's view of a job's arena: the replicas, each process's counters, and the state
/// word, with the meaning the training loop gives them. Slot `w` is worker w, slot W the
/// averager, slot W+1 the job host. Workers' `aux[0]` holds their running loss (Float bits),
/// `aux[1]` the loss of their first step (the yardstick of the divergence check); the averager's `aux` holds bytes moved and nanoseconds spent averaging (its `steps` count
/// rounds). The job host's `samples` counts the samples handed out to the workers
/// (`claimSamples`), so that all of them together stop at exactly the job's sample budget.
///
/// Created by the job host before it forks: the children inherit the mapping and never run
/// its deinit (they leave through _exit), so only the host unmaps and unlinks.
final class SharedState {
    private var arena: Arena
    let parameterCount: Int
    let workers: Int
    private let replicaBases: [UnsafeMutablePointer<Float>]
    /// The host slot's `samples` word, as an atomic every process adds to.
    private let claimed: UnsafeMutablePointer<Atomic<UInt64>>

    /// Vectors per replica in the arena: the replica itself (the averager keeps its snapshot privately).
    static let vectorsPerReplica = 1

    init(jobID: String, parameterCount: Int, replicaNodes: [Int32], workers: Int) throws(LapwingError) {
        arena = try Arena.create(
            jobID: jobID, parameterCount: parameterCount, replicaNodes: replicaNodes, workers: workers,
            vectorsPerReplica: Self.vectorsPerReplica)
        self.parameterCount = parameterCount
        self.workers = workers
        var bases: [UnsafeMutablePointer<Float>] = []
        for r in 0..<replicaNodes.count { bases.append(arena.replica(r).baseAddress!) }
        replicaBases = bases
        let word = arena.hostSlot.address + MemoryLayout<lw_slot>.offset(of: \lw_slot.samples)!
        claimed = word.bindMemory(to: Atomic<UInt64>.self, capacity: 1)
        claimed.initialize(to: Atomic(0))
        arena.setState(.running)
    }

    /// The shm object's name, e.g. `/lapwing.run-42`.
    var name: String { Arena.segmentName(jobID: arena.jobID) }

    @inline(__always)
    func replica(_ r: Int) -> UnsafeMutablePointer<Float> { replicaBases[r] }

    var isStopping: Bool { arena.state == .stopping }

    var isPaused: Bool { arena.state == .paused }

    /// Waits while the job is paused (the daemon sets the state word); false once it is stopping.
    func waitWhilePaused() -> Bool {
        while true {
            switch arena.state {
            case .paused?:
                var ts = timespec(tv_sec: 0, tv_nsec: 2_000_000)
                nanosleep(&ts, nil)
            case .stopping?: return false
            default: return true
            }
        }
    }

    func requestStop() { arena.setState(.stopping) }

    func setPID(slot: Int, _ pid: pid_t) { arena.slot(slot).setPID(pid) }

    /// Samples of all workers together.
    func totalSamples() -> Int {
        var n: UInt64 = 0
        for w in 0..<workers { n &+= arena.slot(w).samples }
        return Int(truncatingIfNeeded: n)
    }

    /// Claims up to `n` of the job's `total` samples for one step; returns how many were granted
    /// (fewer than `n` for the last step, 0 once every sample is handed out). Samples granted to
    /// all workers together add up to exactly `total`, however many workers ask at once.
    @inline(__always)
    func claimSamples(_ n: Int, total: Int) -> Int {
        let before = Int(truncatingIfNeeded: claimed.pointee.wrappingAdd(UInt64(n), ordering: .relaxed).oldValue)
        return before >= total ? 0 : min(n, total - before)
    }

    /// A running loss this many times the first step's loss (or 1e-3, if larger) counts as
    /// diverged: a cross-entropy of a million nats, or predictions a thousand times further off
    /// than the random start, are not a bad patch of training but a blow-up (ReLUs then die and
    /// the loss can stay finite, so waiting for NaN alone would let it pass).
    static let explosionFactor: Float = 1e6

    /// Records a worker's first loss (before its first `recordStep`).
    func recordFirstLoss(slot: Int, loss: Float) { arena.slot(slot).setAux(1, UInt64(loss.bitPattern)) }

    /// The first worker whose running loss is not finite (NaN or infinite) or has exploded
    /// (`explosionFactor`), with its step count, that loss and its first loss; nil when none.
    func divergedWorker() -> (worker: Int, steps: Int, loss: Float, first: Float)? {
        for w in 0..<workers where arena.slot(w).steps > 0 {
            let s = arena.slot(w)
            let v = Float(bitPattern: UInt32(truncatingIfNeeded: s.aux(0)))
            let first = Float(bitPattern: UInt32(truncatingIfNeeded: s.aux(1)))
            if !v.isFinite || (s.steps > 1 && v > Self.explosionFactor * max(first, 1e-3)) {
                return (w, Int(s.steps), v, first)
            }
        }
        return nil
    }

    /// Steps of the given workers together (a replica's node-level step count).
    func steps(of workers: [Int]) -> Int {
        var n: UInt64 = 0
        for w in workers { n &+= arena.slot(w).steps }
        return Int(truncatingIfNeeded: n)
    }

    /// A worker's step: counters and running loss.
    @inline(__always)
    func recordStep(slot: Int, samples: Int, loss: Float) {
        let s = arena.slot(slot)
        s.addSteps(1)
        s.addSamples(UInt64(samples))
        s.setAux(0, UInt64(loss.bitPattern))
    }

    /// The mean of the workers' running losses (nil before any step).
    func meanLoss(workers: Int) -> Double? {
        var sum = 0.0, n = 0
        for w in 0..<workers where arena.slot(w).steps > 0 {
            let v = Float(bitPattern: UInt32(truncatingIfNeeded: arena.slot(w).aux(0)))
            if v.isFinite {
                sum += Double(v)
                n += 1
            }
        }
        return n == 0 ? nil : sum / Double(n)
    }

    func recordAveraging(slot: Int, rounds: Int, bytes: Int, seconds: Double) {
        let s = arena.slot(slot)
        s.setCounters(steps: UInt64(rounds), samples: 0)
        s.setAux(0, UInt64(bytes))
        s.setAux(1, UInt64(seconds * 1e9))
        s.beat()
    }

    func averagingStats(slot: Int) -> (rounds: Int, bytes: Int, seconds: Double) {
        let s = arena.slot(slot)
        return (Int(s.steps), Int(s.aux(0)), Double(s.aux(1)) / 1e9)
    }

    /// Unlinks the shm object (the mapping stays valid until this value is released).
    func remove() { try? arena.unlink() }

    /// Removes a job's arena by id, if it exists (cleanup after a host that died).
    static func remove(jobID: String) { try? Arena.remove(jobID: jobID) }
}
