import LapwingCore
import LapwingJob
import Testing

@testable import LapwingEngine

/// `--data-split label-skew:ALPHA`: a seeded partition of the training rows whose label mix per
/// worker is skewed for a small ALPHA and about the global one for a large ALPHA.
@Suite struct DataShardsTests {
    /// Ten balanced classes over 6000 rows (row i has label i % 10), rows 0..<6000 minus a holdout.
    static let rows = (0..<6000).filter { $0 % 7 != 3 }
    static func label(_ r: Int) -> Float { Float(r % 10) }

    func shards(_ alpha: Double, workers: Int = 4, seed: UInt64 = 5) -> [[Int]] {
        DataShards.labelSkew(alpha: alpha, workers: workers, rows: Self.rows, seed: seed, label: Self.label)
    }

    /// Mean over workers of the total variation distance between a worker's label mix and the
    /// whole set's (0: the same mix; near 1: disjoint labels).
    func skew(_ shards: [[Int]]) -> Double {
        var global = [Double](repeating: 0, count: 10)
        for r in Self.rows { global[r % 10] += 1 / Double(Self.rows.count) }
        var total = 0.0
        for shard in shards {
            var mix = [Double](repeating: 0, count: 10)
            for r in shard { mix[r % 10] += 1 / Double(shard.count) }
            total += zip(mix, global).map { abs($0 - $1) }.reduce(0, +) / 2
        }
        return total / Double(shards.count)
    }

    @Test func everyRowIsInExactlyOneShard() {
        for alpha in [0.01, 0.1, 1, 1000] {
            let s = shards(alpha, workers: 5)
            #expect(s.count == 5)
            #expect(s.allSatisfy { !$0.isEmpty }, "alpha \(alpha): an empty shard")
            #expect(s.flatMap { $0 }.sorted() == Self.rows, "alpha \(alpha): not a partition of the rows")
        }
    }

    @Test func theSplitFollowsFromTheSeed() {
        #expect(shards(0.3, seed: 5) == shards(0.3, seed: 5))
        #expect(shards(0.3, seed: 5) != shards(0.3, seed: 6))
        let w2 = DataShards.rows(.labelSkew(alpha: 0.3), worker: 2, workers: 4, of: Self.rows, seed: 5, label: Self.label)
        #expect(w2 == shards(0.3)[2])
        #expect(DataShards.rows(.iid, worker: 2, workers: 4, of: Self.rows, seed: 5, label: Self.label) == Self.rows)
    }

    @Test func aSmallAlphaSkewsALargeOneDoesNot() {
        let strong = skew(shards(0.05)), weak = skew(shards(1000))
        #expect(strong > 0.5, "label-skew:0.05: mean TV distance \(strong)")
        #expect(weak < 0.05, "label-skew:1000: mean TV distance \(weak)")
        // Each class mostly on one worker at 0.05: the largest share of a class averages above 0.8.
        let s = shards(0.05)
        var top = 0.0
        for c in 0..<10 {
            let counts = s.map { $0.filter { $0 % 10 == c }.count }
            top += Double(counts.max() ?? 0) / Double(counts.reduce(0, +)) / 10
        }
        #expect(top > 0.8, "label-skew:0.05: mean largest share \(top)")
    }

    @Test func theOptionIsParsedAndCheckedWithItsName() {
        #expect((try? DataSplit.parse("label-skew:0.5")) == .labelSkew(alpha: 0.5))
        #expect((try? DataSplit.parse("iid")) == .iid)
        for bad in ["label-skew:0", "label-skew:-1", "label-skew:nan", "label-skew:", "skew:1", "label-skew:1e7"] {
            do {
                _ = try DataSplit.parse(bad)
                Issue.record("\(bad) accepted")
            } catch {
                #expect(error.description.contains("--data-split \(bad.hasPrefix("label-skew:1e") ? "label-skew:10000000" : bad)"), "\(error)")
            }
        }
    }
}
