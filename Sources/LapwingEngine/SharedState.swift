import LapwingArena
import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// The engine's view of a job's arena: the replicas, each process's counters, and the state
/// word, with the meaning the training loop gives them. Slot `w` is worker w, slot W the
/// averager, slot W+1 the job host. Workers' `aux[0]` holds their running loss (Float bits);
/// the averager's `aux` holds bytes moved and nanoseconds spent averaging (its `steps` count
/// rounds).
///
/// Created by the job host before it forks: the children inherit the mapping and never run
/// its deinit (they leave through _exit), so only the host unmaps and unlinks.
final class SharedState {
    private var arena: Arena
    let parameterCount: Int
    let workers: Int
    private let replicaBases: [UnsafeMutablePointer<Float>]

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
