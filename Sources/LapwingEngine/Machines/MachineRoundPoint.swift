import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// A worker's part in a lockstep round across machines (`MachineLevel.lockstep`): local SGD,
/// Hier-AVG and SlowMo call `run` right after an exact (or compressed) round over their
/// machine's replicas. Every worker passes the machine-level barrier (so every replica holds the
/// machine's round, compressed rounds included, which end without a barrier of their own);
/// worker 0 then asks the bridge for the round and waits until it is done (the machines'
/// models averaged into every replica), while the others wait at the barrier again, so nobody
/// steps on a replica that the bridge reads or writes.
///
/// The rounds are numbered 1, 2, ...; every rank of the job runs the same number (the same
/// steps: `TrainingData.machineEpochRows`, checked by the bridge before training), so the
/// ranks' bridges enter the same collectives.
struct MachineRoundPoint {
    private var barrier: BarrierPoint
    private let shared: SharedState
    private let leads: Bool
    private var rounds = 0

    /// Nil in a job on one machine, or for an algorithm whose machine level is not lockstep.
    init?(_ c: WorkerContext) {
        guard let b = c.machineBarrier else { return nil }
        barrier = BarrierPoint(c.shared.barrier(b), participant: c.index)
        shared = c.shared
        leads = c.index == 0
    }

    /// One round across machines at training progress `progress` (`last`: the round that ends
    /// training, always exact). False if the job is stopping (this machine's or another's).
    mutating func run(progress: Double, last: Bool) -> Bool {
        guard barrier.pass() else { return false }
        if leads {
            rounds += 1
            shared.requestMachineRound(rounds, progress: progress, last: last)
            var ts = timespec(tv_sec: 0, tv_nsec: 50_000)
            while shared.completedMachineRound() < rounds {
                if shared.isStopping || shared.machineLevelSignals() & MachineBridge.Signal.machinesDone != 0 { return false }
                nanosleep(&ts, nil)
                ts.tv_nsec = min(ts.tv_nsec * 2, 1_000_000)
            }
        }
        return barrier.pass()
    }
}
