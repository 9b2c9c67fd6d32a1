import LapwingCore
import LapwingJob

/// The training rows of one machine of a job that spans several: every rank reads the same
/// file and keeps its share, dealt by the spec's `--data-split` across the machines (a seeded
/// shuffle cut into equal parts for iid, so that a file sorted by label still gives each
/// machine every label; `label-skew:ALPHA` gives each machine a label mix drawn from a
/// Dirichlet, as `DataShards` does for workers). The shares follow from the seed alone, so the
/// ranks agree without exchanging a word, and together they hold every row exactly once.
/// Inside the machine, its workers sample all of its rows.
enum MachineShards {
    static let stream: UInt64 = 93

    static func rows(of rows: [Int], machine: MachineRank, split: DataSplit, seed: UInt64, label: (Int) -> Float) -> [Int] {
        switch split {
        case .iid:
            var shuffled = rows
            var rng = SeededGenerator(seed: seed, stream: stream)
            shuffled.shuffle(using: &rng)
            let lo = shuffled.count * machine.rank / machine.size
            let hi = shuffled.count * (machine.rank + 1) / machine.size
            return shuffled[lo..<hi].sorted()
        case .labelSkew(let alpha):
            return DataShards.labelSkew(alpha: alpha, workers: machine.size, rows: rows, seed: seed, label: label)[machine.rank]
        }
    }
}
