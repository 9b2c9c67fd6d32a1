/// What an algorithm averages across machines when a job spans several (`lapwing run --mpi`;
/// design section 12): the machine's model is the mean of its replicas, and a round adds the
/// same delta to every replica, so that nothing inside a machine changes. An algorithm that
/// has a machine level returns one from `TrainingAlgorithm.machineLevel()` (nil: `--mpi` is
/// refused for it); how often rounds run is its schedule, in node-level steps like its own
/// averaging.
struct MachineLevel: Sendable {
    /// Node-level steps between two rounds after the warm-up.
    let period: Int
    /// Fraction of training during which a round runs after every node-level step.
    let warmup: Double

    /// Node-level steps between two rounds at training progress `progress` (0...1).
    func interval(at progress: Double) -> Int { progress < warmup ? 1 : period }
}
