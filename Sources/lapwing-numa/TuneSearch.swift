import CLapwing
import Foundation
import LapwingCore
import LapwingOptions

/// `tune`'s search, within a budget of seconds: two pilot runs of the job as given (the
/// initial loss, and the fixed cost and speed of a run, to size the trials), then
/// 1. layouts: every layout (`TuneCandidates.layouts`) for the same number of samples;
/// 2. knobs: the averaging period and the batch around the two best layouts;
/// 3. final: the three best so far and the job as given, again, for twice the samples (and
///    again, up to three passes, while the budget lasts).
/// A trial's score is its loss decrease per second of training at equal samples, the seconds
/// counted at the speed of the run's second half: a job pays its start-up (forks, first touches
/// of the data) once, and in a trial of a second it would favour fewer workers (measured: two
/// workers ran 0.5 epochs at 19-23k samples/s and 5 epochs at 47k, where one worker ran both at
/// about 23-31k and 40k). Only a
/// configuration whose loss after those samples is no worse than the job as given's (within
/// `lossTolerance`) may replace it: a faster one that learns less per sample (more replicas, a
/// larger batch) would need more epochs for the same accuracy, which the same job file would not
/// give it (measured on Fashion-MNIST: two averaged replicas trained 2.2x faster, and ended 2
/// points lower at the same epochs). And only one that beats it by more than `margin` in
/// median in the final round, and in each of its passes: short runs on a shared machine are
/// noisy (one worker beat two by 13% in a tune's final round while a build ran beside it, then
/// took 2.5x as long for the whole job), and a tie is no reason to change a user's job.
struct TuneSearch {
    let base: TrainingOptions
    let budget: Double
    let cores: Int
    let nodes: Int
    var runner: TuneRunner
    let progress: (String) -> Void
    let margin = 1.10
    let lossTolerance = 0.02

    private let start = Date()
    private(set) var trials: [TuneTrial] = []
    private(set) var initialLoss = Double.nan
    private(set) var trialEpochs = 0.0
    private(set) var notes: [String] = []
    /// A stop signal (Ctrl-C) ended the search.
    private(set) var interrupted = false
    /// Seconds a run costs beyond its training (start, loading, evaluation), and samples/s.
    private var overhead = 1.0
    private var rate = 1.0
    /// Seconds kept for the final round while the others run.
    private var finalReserve = 0.0

    init(base: TrainingOptions, budget: Double, cores: Int, nodes: Int, runner: TuneRunner, progress: @escaping (String) -> Void) {
        self.base = base
        self.budget = budget
        self.cores = cores
        self.nodes = nodes
        self.runner = runner
        self.progress = progress
    }

    var elapsed: Double { Date().timeIntervalSince(start) }
    var asGiven: TuneCandidate { TuneCandidate.of(base, cores: cores) }

    /// The chosen candidate and the final round's scores (chosen, as given).
    mutating func run() throws(LapwingError) -> (chosen: TuneCandidate, score: Double, givenScore: Double) {
        try pilots()
        let layouts = TuneCandidates.layouts(base, cores: cores, nodes: nodes)
        planTrials(layoutCount: layouts.count)
        for (i, c) in ([asGiven] + layouts.filter { $0 != asGiven }).enumerated() {
            try trial(c, stage: "layouts", epochs: trialEpochs, tag: "\(i + 1)/\(layouts.count + 1)")
        }
        let bestLayouts = ranked(trials).prefix(2).map(\.candidate)
        let variants = bestLayouts.flatMap { TuneCandidates.knobs(around: $0, base) }.filter { v in !trials.contains { $0.candidate == v } }
        for (i, c) in variants.enumerated() {
            try trial(c, stage: "knobs", epochs: trialEpochs, tag: "\(i + 1)/\(variants.count)")
        }
        var finalists = ranked(trials).map(\.candidate).reduce(into: [TuneCandidate]()) { if !$0.contains($1) { $0.append($1) } }
        finalists = Array(finalists.prefix(3))
        if !finalists.contains(asGiven) { finalists.append(asGiven) }
        // The final round, again while the budget lasts (at most three times, in turn, so that
        // every finalist sees the same moments of a shared machine): means of several runs.
        for pass in 1...3 {
            let expected = Double(finalists.count) * (overhead + trialEpochs * 2 * rows / rate)
            guard pass == 1 || elapsed + expected <= budget else { break }
            for (i, c) in (pass % 2 == 1 ? finalists : finalists.reversed()).enumerated() {
                try trial(c, stage: "final", epochs: trialEpochs * 2, tag: "\(i + 1)/\(finalists.count), pass \(pass)")
            }
        }
        return choose()
    }

    /// Trials best first: those that learn as much per sample as the job as given, by score, then the others by score (failed ones last).
    func ranked(_ ts: [TuneTrial]) -> [TuneTrial] {
        ts.map { ($0, eligible($0)) }.sorted { a, b in a.1 != b.1 ? a.1 : a.0.score > b.0.score }.map(\.0)
    }

    /// Whether the trial's loss is no worse than the job as given's after as many samples
    /// (within the tolerance).
    func eligible(_ t: TuneTrial) -> Bool {
        guard let loss = t.loss, loss.isFinite else { return false }
        let given = trials.filter { $0.samples == t.samples && $0.candidate == asGiven }.compactMap(\.loss)
        guard !given.isEmpty else { return true }
        return loss <= given.reduce(0, +) / Double(given.count) * (1 + lossTolerance)
    }

    private func choose() -> (chosen: TuneCandidate, score: Double, givenScore: Double) {
        // The final round decides when it ran; else every round's mean per candidate.
        let final = trials.filter { $0.stage == "final" }
        let pool = final.contains { $0.candidate == asGiven } && final.count > 1 ? final : trials
        // The median of a candidate's runs: one run that caught a stall moves a mean of three.
        func mean(_ c: TuneCandidate) -> Double {
            let s = pool.filter { $0.candidate == c }.map(\.score).sorted()
            guard !s.isEmpty else { return -.infinity }
            return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        }
        let given = mean(asGiven)
        // Beating the job as given on average is not enough on a shared machine, where one pass
        // may catch the other jobs' peak: a candidate must win every pass that both ran.
        func winsEveryPass(_ c: TuneCandidate) -> Bool {
            let mine = pool.filter { $0.candidate == c }.map(\.score), theirs = pool.filter { $0.candidate == asGiven }.map(\.score)
            return zip(mine, theirs).allSatisfy { $0 > $1 }
        }
        let allowed = Set(pool.filter { t in eligible(t) && winsEveryPass(t.candidate) }.map(\.candidate))
        guard let best = allowed.max(by: { mean($0) < mean($1) }) else { return (asGiven, given, given) }
        if best != asGiven && mean(best) > given * margin { return (best, mean(best), given) }
        return (asGiven, given, given)
    }

    /// The initial loss (a run of one sample), then the job as given for a few seconds' worth.
    private mutating func pilots() throws(LapwingError) {
        guard let given = asGiven.options(from: base) else {
            throw LapwingError(.invalidArgument, "the job as given does not pass its own checks")
        }
        progress("pilot 1/2: the model's initial loss")
        let first = try runner.run(given, epochs: 1e-9)
        guard let s = first.summary, let loss = s.testLoss, loss.isFinite else {
            throw LapwingError(.internalError, "the job as given fails: \(first.failure ?? "no test loss")")
        }
        initialLoss = loss
        overhead = max(0.05, first.wall - s.trainSeconds)
        progress("pilot 2/2: the job as given, briefly (a run costs \(fmt(overhead)) s beyond its training)")
        let second = try runner.run(given, epochs: min(base.epochs, 0.05))
        guard let p = second.summary, p.samples > 0, p.trainSeconds > 0 else {
            throw LapwingError(.internalError, "the job as given fails: \(second.failure ?? "no samples trained")")
        }
        rate = Double(p.samples) / p.trainSeconds
        rows = Double(p.samples) / max(p.epochs, 1e-12)
    }

    private var rows = 1.0

    /// Sizes the trials so that all three rounds fit in what is left of the budget.
    private mutating func planTrials(layoutCount: Int) {
        let runs = Double(layoutCount + 1 + 6 + 4), units = Double(layoutCount + 1 + 6 + 8)
        let left = budget - elapsed
        // Trials as long as the whole plan allows, but at least a second of training (shorter
        // ones measure the machine's noise): then the budget cuts candidates, not trial length.
        let fit = (left - runs * overhead) / units * rate
        let least = max(Double(30 * base.batch * max(1, base.workers ?? cores)), rate * 1.0)
        var samples = max(fit, least)
        samples = min(samples, base.epochs / 2 * rows)
        trialEpochs = samples / rows
        // The final round (four candidates at twice the samples) is kept free of the others.
        finalReserve = 4 * (overhead + 2 * samples / rate)
        if fit < least {
            notes.append(
                "the budget (\(Int(budget)) s) leaves too little for every candidate in trials of \(Int(samples)) samples (a second of training at least); the later ones were left out (give a larger --budget)")
        }
    }

    private mutating func trial(_ c: TuneCandidate, stage: String, epochs: Double, tag: String) throws(LapwingError) {
        let expected = overhead + epochs * rows / rate + (stage == "final" ? 0 : finalReserve)
        guard elapsed + expected <= budget || (stage == "final" && c == asGiven && !trials.contains { $0.stage == "final" }) else {
            if !notes.contains(where: { $0.hasPrefix("the budget ended") }) {
                notes.append("the budget ended during the \(stage) round; \(c.label) and the trials after it were not run")
            }
            return
        }
        guard let options = c.options(from: base) else { return }
        let r = try runner.run(options, epochs: epochs)
        // Ctrl-C reaches the trial (same process group) and us: stop, writing nothing.
        if lw_stop_signal() != 0 {
            interrupted = true
            throw LapwingError(.internalError, "interrupted: no job file written")
        }
        let loss = r.summary?.testLoss
        var score = -Double.infinity, steady = 0.0
        if let s = r.summary, r.failure == nil, let loss, loss.isFinite, s.trainSeconds > 0, s.samples > 0 {
            steady = Double(s.samples) / s.trainSeconds
            if let h = r.halfway, s.trainSeconds - h.elapsed > 0 {
                steady = Double(s.samples - h.samples) / (s.trainSeconds - h.elapsed)
            }
            score = (initialLoss - loss) * steady / Double(s.samples)
        }
        let t = TuneTrial(
            candidate: c, stage: stage, samples: r.summary?.samples ?? 0, trainSeconds: r.summary?.trainSeconds ?? 0,
            wallSeconds: r.wall, loss: loss, accuracy: r.summary?.testAccuracy, failure: r.failure, steadyRate: steady, score: score)
        trials.append(t)
        let what = t.failure.map { "failed: \($0)" }
            ?? "loss \(fmt(initialLoss, 3)) -> \(fmt(loss ?? .nan, 3)) in \(fmt(t.trainSeconds)) s (\(Int(steady)) samples/s after its start): \(fmt(score, 3))/s"
        progress("[\(Int(elapsed))/\(Int(budget)) s] \(stage) \(tag): \(c.label): \(what)")
    }
}

func fmt(_ v: Double, _ digits: Int = 2) -> String {
    v.isFinite ? String(format: "%.\(digits)f", v) : "n/a"
}
