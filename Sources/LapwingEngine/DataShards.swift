import LapwingCore
import LapwingJob

#if canImport(Glibc)
import Glibc
#endif

/// The rows each worker samples under the spec's `--data-split`: the one place that deals the
/// training rows to workers, for every algorithm (`Worker` asks it before making its `Trainer`).
///
/// `label-skew:ALPHA` partitions the rows: for each label, its rows (shuffled) are cut among
/// the W workers in proportions drawn from a symmetric Dirichlet(ALPHA) over the workers (as
/// Hsu et al. 2019 and Wang et al. 2020 partition CIFAR for federated learning). Every training
/// row is in exactly one shard; a worker left empty takes one row from the largest shard. The
/// shards follow from the seed alone, so a replacement worker gets the shard its predecessor had.
/// The split is per worker (not per replica): workers that share a replica then sample
/// different label mixes that together are the whole set, and algorithms with one replica per
/// worker (local SGD, SlowMo, ...) see workers whose data differ, as in Woodworth et al. 2020.
public enum DataShards {
    /// The RNG stream of the split (apart from the workers' sample orders and the holdout).
    static let stream: UInt64 = 91

    /// Worker `worker`'s rows of `rows` (ascending) under `split`: all of them for iid.
    static func rows(
        _ split: DataSplit, worker: Int, workers: Int, of rows: [Int], seed: UInt64, label: (Int) -> Float
    ) -> [Int] {
        switch split {
        case .iid: return rows
        case .labelSkew(let alpha): return labelSkew(alpha: alpha, workers: workers, rows: rows, seed: seed, label: label)[worker]
        }
    }

    /// Every worker's shard (ascending rows) under `label-skew:alpha`; `rows.count >= workers`.
    public static func labelSkew(alpha: Double, workers: Int, rows: [Int], seed: UInt64, label: (Int) -> Float) -> [[Int]] {
        var byLabel: [Float: [Int]] = [:]
        for r in rows { byLabel[label(r), default: []].append(r) }
        var rng = SeededGenerator(seed: seed, stream: stream)
        var shards = [[Int]](repeating: [], count: workers)
        for key in byLabel.keys.sorted() {
            var members = byLabel[key] ?? []
            members.shuffle(using: &rng)
            let p = Dirichlet.sample(alpha: alpha, count: workers, using: &rng)
            var start = 0
            var cumulative = 0.0
            for w in 0..<workers {
                cumulative += p[w]
                let end = w == workers - 1 ? members.count : min(members.count, Int((cumulative * Double(members.count)).rounded()))
                if end > start {
                    shards[w] += members[start..<end]
                    start = end
                }
            }
        }
        for w in 0..<workers where shards[w].isEmpty {
            guard let largest = shards.indices.max(by: { shards[$0].count < shards[$1].count }), shards[largest].count > 1
            else { break }
            shards[w].append(shards[largest].removeLast())
        }
        return shards.map { $0.sorted() }
    }
}

/// Draws from a symmetric Dirichlet distribution (normalised Gamma(alpha) variates, in logs so
/// that a small alpha cannot underflow every variate to 0).
enum Dirichlet {
    static func sample(alpha: Double, count: Int, using rng: inout SeededGenerator) -> [Double] {
        let logs = (0..<count).map { _ in logGamma(shape: alpha, using: &rng) }
        let top = logs.max() ?? 0
        let weights = logs.map { exp($0 - top) }
        let sum = weights.reduce(0, +)
        return weights.map { $0 / sum }
    }

    /// log of a Gamma(shape, 1) variate: Marsaglia and Tsang (2000), with their boost
    /// Gamma(a) = Gamma(a + 1) * U^(1/a) for a < 1.
    static func logGamma(shape a: Double, using rng: inout SeededGenerator) -> Double {
        if a < 1 { return logGamma(shape: a + 1, using: &rng) + log(open(&rng)) / a }
        let d = a - 1.0 / 3.0
        let c = 1.0 / (9.0 * d).squareRoot()
        while true {
            let x = normal(&rng)
            let v0 = 1 + c * x
            guard v0 > 0 else { continue }
            let v = v0 * v0 * v0
            if log(open(&rng)) < 0.5 * x * x + d - d * v + d * log(v) { return log(d) + log(v) }
        }
    }

    /// Uniform in (0, 1).
    static func open(_ rng: inout SeededGenerator) -> Double { (Double(rng.next() >> 11) + 0.5) * 0x1p-53 }

    static func normal(_ rng: inout SeededGenerator) -> Double {
        (-2 * log(open(&rng))).squareRoot() * cos(2 * Double.pi * open(&rng))
    }
}
