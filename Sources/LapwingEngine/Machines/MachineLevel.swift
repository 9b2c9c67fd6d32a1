/// What an algorithm averages across machines when a job spans several (`lapwing run --mpi`;
/// design section 12): the machine's model is the mean of its replicas, and a round adds the
/// same delta to every replica, so that nothing inside a machine changes. An algorithm that
/// has a machine level returns one from `TrainingAlgorithm.machineLevel()` (nil: `--mpi` is
/// refused for it). Its schedule says when rounds run:
///
/// - `background`: the bridge runs rounds on its own, every `period` node-level steps, while
///   the workers go on (LAP-SGD, LPP-SGD: asynchronous inside, asynchronous across).
/// - `lockstep`: the algorithm's workers ask for a round inside their own synchronous round
///   (`MachineRoundPoint`), and wait for it: local SGD, Hier-AVG and SlowMo average across
///   machines at the points where they average across workers, so that the arithmetic is the
///   paper's over every worker of every machine.
struct MachineLevel: Sendable {
    enum Schedule: Sendable {
        /// Node-level steps between two rounds after the warm-up; the fraction of training
        /// during which a round runs after every node-level step.
        case background(period: Int, warmup: Double)
        case lockstep
    }

    let schedule: Schedule

    static func background(period: Int, warmup: Double) -> MachineLevel {
        MachineLevel(schedule: .background(period: period, warmup: warmup))
    }

    static let lockstep = MachineLevel(schedule: .lockstep)

    var isLockstep: Bool {
        if case .lockstep = schedule { return true }
        return false
    }

    /// Node-level steps between two background rounds at training progress `progress` (0...1).
    func interval(at progress: Double) -> Int {
        guard case .background(let period, let warmup) = schedule else { return 1 }
        return progress < warmup ? 1 : period
    }
}
