import CLapwing
import LapwingArena
import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// `lapwing-bench barrier [--processes W] [--rounds N] [--spins S]`: the cost of one round of an
/// arena barrier (ArenaBarrier) with 2 processes, and with W when given, as the job host's forked
/// workers would meet at it; beside a baseline of the same processes running the same loop
/// without the barrier (a relaxed increment of their own slot per round), so that the ratio
/// comes from one run. Also the barrier with no spinning (every wait sleeps in FUTEX_WAIT).
///
/// Runs before anything starts a thread: the processes are forked (lw_fork_child), as the job
/// host forks its workers.
struct BarrierBench {
    var processes: [Int] = [2]
    var rounds = 20_000
    var spins = ArenaBarrier.defaultSpins

    func run() throws(LapwingError) -> [String: Any] {
        var cases: [[String: Any]] = []
        for w in processes {
            let baseline = try measure(processes: w, barrier: false, spins: 0)
            let spinning = try measure(processes: w, barrier: true, spins: spins)
            let sleeping = try measure(processes: w, barrier: true, spins: 0)
            cases.append([
                "processes": w, "rounds": rounds, "spins": spins,
                "barrier_us_per_round": spinning,
                "barrier_futex_only_us_per_round": sleeping,
                "baseline_us_per_round": baseline,
                "barrier_over_baseline": spinning / max(baseline, 1e-9),
            ])
        }
        return ["online_cpus": sysconf(Int32(_SC_NPROCESSORS_ONLN)), "cases": cases]
    }

    /// Forks `processes` children that each run `rounds` rounds (of the barrier, or of the
    /// baseline loop) and report their time in their slot's aux[0]; the slowest one's time per
    /// round, in µs.
    private func measure(processes w: Int, barrier: Bool, spins: Int) throws(LapwingError) -> Double {
        let id = "bench-barrier-\(getpid())"
        let arena = try Arena.create(
            jobID: id, parameterCount: 1, replicaNodes: [-1], workers: w, vectorsPerReplica: 1, barriers: 1)
        arena.setState(.running)
        var children: [pid_t] = []
        for p in 0..<w {
            let pid = try shimCall("fork", object: "barrier bench participant \(p)") { lw_fork_child(SIGKILL) }
            if pid == 0 { _exit(participate(arena, p, barrier: barrier, spins: spins)) }
            children.append(pid)
        }
        var failed: [pid_t] = []
        for pid in children {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            if status != 0 { failed.append(pid) }
        }
        guard failed.isEmpty else {
            throw LapwingError(.internalError, "barrier bench: participant processes \(failed) failed")
        }
        let worst = (0..<w).map { arena.workerSlot($0).aux(0) }.max() ?? 0
        return Double(worst) / 1000
    }

    /// A forked participant's work; its exit status. It borrows the arena for the whole call, so
    /// that the mapping its slot and barrier views point into stays alive meanwhile.
    private func participate(_ arena: borrowing Arena, _ p: Int, barrier: Bool, spins: Int) -> Int32 {
        let slot = arena.workerSlot(p)
        if barrier {
            let drill = BarrierDrill(barrier: 0, participant: p, rounds: rounds, spins: spins, check: false)
            guard let r = try? drill.run(in: arena), r.counted == rounds, !r.stopped else { return 1 }
            // The first round only gathers the processes: time the others.
            slot.setAux(0, r.nanoseconds / UInt64(rounds - 1))
        } else {
            let t0 = clockNanoseconds()
            for _ in 0..<rounds { slot.addSteps() }
            slot.setAux(0, (clockNanoseconds() - t0) / UInt64(rounds))
        }
        return 0
    }
}

private func clockNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
