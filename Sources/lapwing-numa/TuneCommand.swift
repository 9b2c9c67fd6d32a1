import ArgumentParser
import CLapwing
import Foundation
import LapwingCore
import LapwingEngine
import LapwingOptions
import LapwingTopology

/// `lapwing-numa tune`: short trial runs of a job over the placements and knobs that matter,
/// ranked by loss decrease per second at equal samples, within a budget; writes the best as a
/// job file for `lapwing run --config` and `lapwing submit --config`, and says why.
struct TuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tune",
        abstract: "Find the fastest placement and knobs for a job with short trial runs; write them as a job file.",
        discussion: """
            Takes the options of `lapwing run` (or --config FILE). Tries, within --budget seconds: every asynchronous \
            algorithm (\(Algorithms.asynchronousNames.joined(separator: ", "))) on all cores and on half of them, with one \
            replica per NUMA node up to one per worker; then, around the two best, a quarter and four times the averaging \
            period and twice the batch; then the three best and the job as given again, for twice the samples. A trial's \
            score is its loss decrease per second of training at equal samples. The job as given is kept unless another \
            beats it by more than 10% in median in the final round, and in each of its passes, while its loss after the same samples is no more than 2% higher \
            (one that learns less per sample, e.g. with more replicas or a larger batch, would need more epochs for the \
            same accuracy). Writes the chosen configuration (every option of the job, so the \
            file stands alone) to --output.

            Example: lapwing-numa tune --budget 60 --output tuned.conf \\
                       --data idx:/usr/share/datasets/fashion-mnist --model mlp:784-256-10 --epochs 5
                     lapwing run --config tuned.conf
            Exit status: 0 written, 1 the job fails or a trial cannot run, 2 bad arguments, 130 interrupted (Ctrl-C).
            """
    )

    @OptionGroup var training: TrainingOptions

    @Option(help: "Seconds the trials may take together (10 to 86400).")
    var budget: Double = 60

    @Option(help: "The job file to write.")
    var output = "lapwing-tuned.conf"

    @Option(help: "The lapwing executable that runs the trials (default: the one beside lapwing-numa).")
    var lapwing: String?

    @OptionGroup var outputOptions: OutputOptions

    func validate() throws {
        guard budget.isFinite, (10...86400).contains(budget) else { throw ValidationError("--budget \(budget): give 10 to 86400 seconds") }
        do {
            _ = try training.spec(defaultWorkers: JobHost.defaultWorkerCount(), id: "tune", outputDir: nil)
        } catch let e {
            throw ValidationError(e.description)
        }
    }

    func run() throws {
        let topology: Topology
        let runner: TuneRunner
        do {
            topology = try Topology.current()
            runner = try TuneRunner(lapwing: TuneRunner.locateLapwing(lapwing))
        } catch let e {
            throw fail(e)
        }
        defer { runner.removeScratch() }
        _ = lw_install_stop_handlers()
        let cores = JobHost.defaultWorkerCount()
        var search = TuneSearch(
            base: training, budget: budget, cores: cores, nodes: max(1, topology.nodesWithCPUs.count), runner: runner,
            progress: { line in FileHandle.standardError.write(Data("tune: \(line)\n".utf8)) })
        let result: (chosen: TuneCandidate, score: Double, givenScore: Double)
        do {
            result = try search.run()
        } catch let e {
            if search.interrupted {
                FileHandle.standardError.write(Data("lapwing-numa: tune \(e.message)\n".utf8))
                throw ExitCode(130)
            }
            throw fail(e)
        }
        guard var chosen = result.chosen.options(from: training) else { throw fail(LapwingError(.internalError, "no candidate passed its checks")) }
        chosen.config = nil
        chosen.jobID = nil
        let speedup = result.givenScore > 0 ? result.score / result.givenScore : .nan
        let why = reason(search, result, speedup)
        do {
            try JobConfigFile.write(chosen, comments: header(search, why, topology), to: output)
        } catch let e {
            throw fail(e)
        }
        if outputOptions.json {
            printJSON(search: search, result: result, speedup: speedup)
        } else {
            printTable(search)
            print(why)
            for note in search.notes { print("note: \(note)") }
            print("wrote \(output): lapwing run --config \(output)")
        }
    }

    private func reason(_ s: TuneSearch, _ r: (chosen: TuneCandidate, score: Double, givenScore: Double), _ speedup: Double) -> String {
        if r.chosen == s.asGiven {
            return "kept the job as given (\(s.asGiven.label)): no configuration that learned as much per sample beat its \(fmt(r.givenScore, 3)) loss/s by more than 10% in the final round"
        }
        return "chose \(r.chosen.label): \(fmt(r.score, 3)) loss/s against \(fmt(r.givenScore, 3)) for the job as given (\(s.asGiven.label)), \(fmt(speedup))x, in the final round's runs of \(fmt(s.trialEpochs * 2, 3)) epochs"
    }

    private func header(_ s: TuneSearch, _ why: String, _ t: Topology) -> [String] {
        let date = ISO8601DateFormatter().string(from: Date())
        return [
            "Written by lapwing-numa tune on \(date), for a machine with \(JobHost.defaultWorkerCount()) cores over \(t.nodes.count) NUMA node(s),",
            "after \(s.trials.count) trial runs in \(Int(s.elapsed)) s (budget \(Int(budget)) s).",
            why, "Run it: lapwing run --config FILE (options given on the command line win).",
        ]
    }

    private func printTable(_ s: TuneSearch) {
        print("initial loss \(fmt(s.initialLoss, 4)); trials of \(fmt(s.trialEpochs, 3)) epochs (final round: twice that)")
        let rows = s.trials.map { t in
            [
                t.stage, t.candidate.label, String(t.samples), fmt(t.trainSeconds), String(Int(t.steadyRate)), fmt(t.loss ?? .nan, 4),
                t.failure ?? fmt(t.score, 3), t.failure != nil ? "" : s.eligible(t) ? "yes" : "no",
            ]
        }
        let head = ["round", "configuration", "samples", "train s", "steady samples/s", "test loss", "loss/s", "as good per sample"]
        let widths = (0..<head.count).map { i in ([head[i]] + rows.map { $0[i] }).map(\.count).max() ?? 0 }
        for r in [head] + rows {
            print(r.enumerated().map { i, v in v.padding(toLength: widths[i], withPad: " ", startingAt: 0) }.joined(separator: "  "))
        }
    }

    private func printJSON(search s: TuneSearch, result r: (chosen: TuneCandidate, score: Double, givenScore: Double), speedup: Double) {
        let object: [String: Any] = [
            "budget_seconds": budget, "seconds": s.elapsed, "initial_loss": s.initialLoss, "trial_epochs": s.trialEpochs,
            "trials": s.trials.map { t in t.json.merging(["as_good_per_sample": s.eligible(t)]) { a, _ in a } }, "chosen": r.chosen.label, "as_given": s.asGiven.label,
            "chosen_score": r.score.isFinite ? r.score : NSNull(), "as_given_score": r.givenScore.isFinite ? r.givenScore : NSNull(),
            "speedup": speedup.isFinite ? speedup : NSNull(), "output": output, "notes": s.notes,
        ]
        if let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) {
            print(String(decoding: data, as: UTF8.self))
        }
    }
}
