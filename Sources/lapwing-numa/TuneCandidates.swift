import LapwingCore
import LapwingEngine
import LapwingOptions

/// One configuration `tune` tries: the user's job with the placement and knobs that matter
/// changed (the algorithm among the asynchronous ones, workers, replicas per node, the
/// averaging period, the batch). Everything else (data, model, learning rate, epochs...) stays
/// the user's.
struct TuneCandidate: Hashable, Sendable {
    var algorithm: String
    var workers: Int
    /// nil: the algorithm's default (one per NUMA node, or one for hogwild).
    var replicas: Int?
    /// The algorithm's `--period` (nil: its default, or the user's).
    var period: Int?
    var batch: Int

    /// The user's job as given: the candidate every other is measured against.
    static func of(_ o: TrainingOptions, cores: Int) -> TuneCandidate {
        TuneCandidate(algorithm: o.algorithm, workers: o.workers ?? cores, replicas: o.replicas, period: nil, batch: o.batch)
    }

    /// The user's options with this candidate's placement and knobs; nil when the job's checks
    /// refuse the combination (e.g. hogwild with two replicas).
    func options(from base: TrainingOptions) -> TrainingOptions? {
        var o = base
        if o.algorithm != algorithm {
            o.algorithm = algorithm
            // The user's algorithm options belong to the user's algorithm; keep the compressor's.
            o.algorithmOptions = Self.compressorOptions(base.algorithmOptions)
        }
        o.workers = workers
        o.replicas = replicas
        o.batch = batch
        if let period {
            o.algorithmOptions = Self.without("period", o.algorithmOptions) + ["--period", String(period)]
        }
        guard (try? o.spec(defaultWorkers: workers, id: "tune-check", outputDir: nil)) != nil else { return nil }
        return o
    }

    var label: String {
        var parts = ["\(algorithm)", "\(workers) worker\(workers == 1 ? "" : "s")"]
        if let replicas { parts.append("\(replicas) replica\(replicas == 1 ? "" : "s")") }
        if let period { parts.append("period \(period)") }
        parts.append("batch \(batch)")
        return parts.joined(separator: ", ")
    }

    /// The `--NAME VALUE` pairs of `options` whose NAME is a compressor's.
    static func compressorOptions(_ options: [String]) -> [String] {
        TrainingOptions.optionPairs(options).filter { Compressors.knobNames.contains($0.0) }.flatMap { ["--\($0.0)", $0.1] }
    }

    static func without(_ name: String, _ options: [String]) -> [String] {
        TrainingOptions.optionPairs(options).filter { $0.0 != name }.flatMap { ["--\($0.0)", $0.1] }
    }
}

/// The configurations `tune` tries, in stages: first the layouts (algorithm, workers, replicas)
/// at the user's batch and the algorithms' default knobs; then, around the best layouts, the
/// averaging period and the batch.
enum TuneCandidates {
    /// Layouts for a job that may use `cores` cores over `nodes` NUMA nodes: every asynchronous
    /// algorithm, on all cores or half of them, with one replica per node, per two nodes'
    /// worth of workers ... up to one per worker (as each algorithm accepts).
    static func layouts(_ base: TrainingOptions, cores: Int, nodes: Int) -> [TuneCandidate] {
        var workerCounts = [cores]
        if cores >= 2 { workerCounts.append(cores / 2) }
        var result: [TuneCandidate] = []
        let asynchronous = Algorithms.asynchronousNames
        for algorithm in asynchronous {
            for w in workerCounts {
                // One worker on one replica is plain SGD whichever asynchronous algorithm runs it
                // (measured: the same loss to the last digit); it is tried once, as the user's.
                let own = asynchronous.contains(base.algorithm) ? base.algorithm : asynchronous[0]
                if w == 1 && algorithm != own { continue }
                var replicaCounts: [Int?] = [nil]
                var r = max(1, nodes)
                while r <= w {
                    replicaCounts.append(r)
                    r *= 2
                }
                if !replicaCounts.contains(w) { replicaCounts.append(w) }
                for r in replicaCounts {
                    let c = TuneCandidate(algorithm: algorithm, workers: w, replicas: r, period: nil, batch: base.batch)
                    if c.options(from: base) != nil { result.append(c) }
                }
            }
        }
        return dedup(result, base, nodes: nodes)
    }

    /// Variations of `c`: its period a quarter and four times the default (when the algorithm
    /// averages replicas and has more than one), and twice the batch.
    static func knobs(around c: TuneCandidate, _ base: TrainingOptions) -> [TuneCandidate] {
        var result: [TuneCandidate] = []
        if Algorithms.declares(c.algorithm, knob: "period"), let opts = c.options(from: base),
            let spec = try? opts.spec(defaultWorkers: c.workers, id: "tune-check", outputDir: nil),
            (c.replicas ?? 1) > 1
        {
            let period = Int(spec.algorithm.knobs["period"] ?? Algorithms.defaultKnob(c.algorithm, "period") ?? 16)
            // (the user's --period, else the algorithm's default)
            for p in [max(1, period / 4), period * 4] where p != period {
                var v = c
                v.period = p
                result.append(v)
            }
        }
        var wide = c
        wide.batch = c.batch * 2
        result.append(wide)
        return result.filter { $0.options(from: base) != nil }
    }

    /// `candidates` without those that would run the same job as another (e.g. replicas nil and
    /// replicas 1 on one node for hogwild).
    private static func dedup(_ candidates: [TuneCandidate], _ base: TrainingOptions, nodes: Int) -> [TuneCandidate] {
        var seen = Set<String>()
        return candidates.filter { c in
            guard let o = c.options(from: base), let spec = try? o.spec(defaultWorkers: c.workers, id: "tune", outputDir: nil) else {
                return false
            }
            let replicas = Algorithms.replicas(spec, numaNodes: nodes) ?? -1
            return seen.insert("\(c.algorithm)/\(c.workers)/\(replicas)/\(c.period ?? 0)/\(c.batch)").inserted
        }
    }
}
