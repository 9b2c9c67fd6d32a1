import CLapwing
import LapwingArena
import LapwingCore
import LapwingJob
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The engine's view of a job's arena: the replicas, each process's counters, and the state
/// word, with the meaning the training loop gives them. Slot `w` is worker w, slot W the
/// averager, slot W+1 the job host. Workers' `aux[0]` holds their running loss (Float bits),
/// `aux[1]` the loss of their first step (the yardstick of the divergence check); a
/// coordinator's `steps` count its rounds and its `aux[1]` the nanoseconds they took. Every
/// process's `aux[2]` and `aux[3]` count the bytes it exchanged and those across NUMA nodes. The job host's `samples` counts the samples handed out to the workers
/// (`claimSamples`), so that all of them together stop at exactly the job's sample budget; its
/// other words belong to the machine level (`recordMachineRounds`, `signalMachineLevel`).
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

    /// What the algorithm asked for besides the replicas.
    let needs: ArenaNeeds

    /// `workerReplicas[w]`: the replica of worker w (its exchange vectors go on that replica's node).
    init(jobID: String, parameterCount: Int, replicaNodes: [Int32], workers: Int, needs: ArenaNeeds, workerReplicas: [Int])
        throws(LapwingError)
    {
        arena = try Arena.create(
            jobID: jobID, parameterCount: parameterCount, replicaNodes: replicaNodes, workers: workers,
            vectorsPerReplica: needs.vectorsPerReplica, barriers: needs.barriers,
            exchangeVectorsPerWorker: needs.exchangeVectorsPerWorker, workerReplicas: workerReplicas)
        self.needs = needs
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

    /// Sets the claim counter (a resumed job, before any worker runs).
    func restoreClaimed(_ n: Int) { claimed.pointee.store(UInt64(n), ordering: .relaxed) }

    /// A worker's step and sample counters.
    func counters(slot: Int) -> (steps: Int, samples: Int) {
        let s = arena.slot(slot)
        return (Int(truncatingIfNeeded: s.steps), Int(truncatingIfNeeded: s.samples))
    }

    /// Sets a worker's counters (a resumed job, before any worker runs).
    func restoreCounters(slot: Int, steps: Int, samples: Int) {
        arena.slot(slot).setCounters(steps: UInt64(steps), samples: UInt64(samples))
    }

    /// A running loss this many times the first step's loss (or 1e-3, if larger) counts as
    /// diverged: training from a random start lowers the loss; a hundredfold rise is a blow-up,
    /// even where it stays finite (an MLP on raw 0-255 pixels at the default rate climbs from
    /// about 36 to 8000 and sits there at chance, its ReLUs dead), so waiting for NaN alone, or
    /// for a millionfold rise, would let it pass.
    static let explosionFactor: Float = 100

    /// Records a worker's first loss (before its first `recordStep`), the divergence check's
    /// yardstick: once per slot, so a replacement worker or a resumed job, whose first loss comes
    /// late in training and is small, keeps the yardstick of the job's start.
    func recordFirstLoss(slot: Int, loss: Float) {
        let s = arena.slot(slot)
        if s.aux(1) == 0 { s.setAux(1, UInt64(loss.bitPattern)) }
    }

    /// A worker's yardstick (Float bits; 0 before its first step).
    func firstLossBits(slot: Int) -> UInt32 { UInt32(truncatingIfNeeded: arena.slot(slot).aux(1)) }

    /// Sets a worker's yardstick (a resumed job, before any worker runs).
    func restoreFirstLoss(slot: Int, bits: UInt32) { arena.slot(slot).setAux(1, UInt64(bits)) }

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

    /// A coordinator's rounds so far and the seconds they took (its slot's `steps` and `aux[1]`).
    func recordRounds(slot: Int, rounds: Int, seconds: Double) {
        let s = arena.slot(slot)
        s.setCounters(steps: UInt64(rounds), samples: 0)
        s.setAux(1, UInt64(seconds * 1e9))
        s.beat()
    }

    func roundStats(slot: Int) -> (rounds: Int, seconds: Double) {
        let s = arena.slot(slot)
        return (Int(s.steps), Double(s.aux(1)) / 1e9)
    }

    /// The bytes a process has moved between replicas and exchange buffers so far, and those of
    /// them that crossed a NUMA node (its slot's `aux[2]` and `aux[3]`; every exchange path
    /// counts its own).
    @inline(__always)
    func recordExchange(slot: Int, bytes: Int, crossNode: Int) {
        let s = arena.slot(slot)
        s.setAux(2, UInt64(bytes))
        s.setAux(3, UInt64(crossNode))
    }

    /// What one process has recorded with `recordExchange`.
    func exchanged(slot: Int) -> (bytes: Int, crossNode: Int) {
        let s = arena.slot(slot)
        return (Int(truncatingIfNeeded: s.aux(2)), Int(truncatingIfNeeded: s.aux(3)))
    }

    /// Bytes exchanged by every process of the job together, and those across NUMA nodes.
    func bytesExchanged() -> (bytes: Int, crossNode: Int) {
        var b: UInt64 = 0, c: UInt64 = 0
        for slot in 0..<(workers + 1) {
            b &+= arena.slot(slot).aux(2)
            c &+= arena.slot(slot).aux(3)
        }
        return (Int(truncatingIfNeeded: b), Int(truncatingIfNeeded: c))
    }

    /// Publishes round `round` of a process (its slot's `flags` word, a release store): the
    /// vectors it wrote for that round are complete. overlap-local's workers publish their
    /// snapshots this way, its coordinator the anchor. Read with `publishedRound`.
    func publishRound(slot: Int, _ round: Int) {
        roundWord(slot).pointee.store(UInt32(truncatingIfNeeded: round), ordering: .releasing)
    }

    /// The round a process last published (acquire load; 0 before any).
    func publishedRound(slot: Int) -> Int { Int(roundWord(slot).pointee.load(ordering: .acquiring)) }

    private func roundWord(_ slot: Int) -> UnsafeMutablePointer<Atomic<UInt32>> {
        let word = arena.slot(slot).address + MemoryLayout<lw_slot>.offset(of: \lw_slot.flags)!
        return word.assumingMemoryBound(to: Atomic<UInt32>.self)
    }

    /// The machine level's handshake (`lapwing run --mpi`): bits that the bridge process and the
    /// job host set in the host slot's `flags` word (`MachineBridge.Signal`), read with acquire.
    func signalMachineLevel(_ bits: UInt32) {
        _ = roundWord(workers + 1).pointee.bitwiseOr(bits, ordering: .acquiringAndReleasing)
    }

    func machineLevelSignals() -> UInt32 { roundWord(workers + 1).pointee.load(ordering: .acquiring) }

    /// The bridge's rounds, their seconds and the bytes each rank put on the wire for them (the
    /// host slot's `steps`, `aux[1]` and `aux[2]`; the host's `samples` is the claim counter, and
    /// its `aux` words count in no other total).
    func recordMachineRounds(rounds: Int, seconds: Double, bytes: Int) {
        let s = arena.slot(workers + 1)
        s.setAux(0, UInt64(rounds))
        s.setAux(1, UInt64(seconds * 1e9))
        s.setAux(2, UInt64(bytes))
        s.beat()
    }

    func machineRounds() -> (rounds: Int, seconds: Double, bytes: Int) {
        let s = arena.slot(workers + 1)
        return (Int(truncatingIfNeeded: s.aux(0)), Double(s.aux(1)) / 1e9, Int(truncatingIfNeeded: s.aux(2)))
    }

    /// Lockstep rounds across machines (`MachineRoundPoint`, `MachineBridge`): worker 0 asks
    /// for round n in the host slot's `aux[3]` (n << 32, then the training progress in
    /// millionths, or all ones for the last round), the bridge says round n is done in the host
    /// slot's `steps`. Release stores and acquire loads: the replicas written before a request
    /// (or a completion) are visible to whoever sees it.
    func requestMachineRound(_ n: Int, progress: Double, last: Bool) {
        let p: UInt64 = last ? 0xFFFF_FFFF : UInt64(max(0, min(progress, 1)) * 1e6)
        hostWord(MemoryLayout<lw_slot>.offset(of: \lw_slot.aux)! + 3 * 8).pointee.store(UInt64(n) << 32 | p, ordering: .releasing)
    }

    /// The last round asked for, and its progress (nil: the last round of training).
    func machineRoundRequest() -> (round: Int, progress: Double?) {
        let v = hostWord(MemoryLayout<lw_slot>.offset(of: \lw_slot.aux)! + 3 * 8).pointee.load(ordering: .acquiring)
        let p = v & 0xFFFF_FFFF
        return (Int(v >> 32), p == 0xFFFF_FFFF ? nil : Double(p) / 1e6)
    }

    func completeMachineRound(_ n: Int) {
        hostWord(MemoryLayout<lw_slot>.offset(of: \lw_slot.steps)!).pointee.store(UInt64(n), ordering: .releasing)
    }

    func completedMachineRound() -> Int {
        Int(truncatingIfNeeded: hostWord(MemoryLayout<lw_slot>.offset(of: \lw_slot.steps)!).pointee.load(ordering: .acquiring))
    }

    private func hostWord(_ offset: Int) -> UnsafeMutablePointer<Atomic<UInt64>> {
        (arena.slot(workers + 1).address + offset).assumingMemoryBound(to: Atomic<UInt64>.self)
    }

    /// Barrier `b` of the arena (the synchronous algorithms').
    func barrier(_ b: Int) -> ArenaBarrier { arena.barrier(b) }

    /// Exchange vector `k` of worker `w` (d floats, on its replica's node).
    func exchange(_ k: Int, ofWorker w: Int) -> UnsafeMutablePointer<Float> { arena.exchangeVector(k, ofWorker: w).baseAddress! }

    /// State vector `v` (1..<vectorsPerReplica) of replica `r`: a snapshot, an anchor, momentum...
    func vector(_ v: Int, ofReplica r: Int) -> UnsafeMutablePointer<Float> { arena.vector(v, ofReplica: r).baseAddress! }

    /// Unlinks the shm object (the mapping stays valid until this value is released).
    func remove() { try? arena.unlink() }

    /// Removes a job's arena by id, if it exists (cleanup after a host that died).
    static func remove(jobID: String) { try? Arena.remove(jobID: jobID) }
}
