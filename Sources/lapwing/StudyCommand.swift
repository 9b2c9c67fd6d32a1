import ArgumentParser
import CLapwing
import Foundation
import LapwingCore
import LapwingEngine
import LapwingJob
import LapwingOptions
import LapwingProtocol
import LapwingStudy

#if canImport(Glibc)
import Glibc
#endif

/// `lapwing study`: several jobs on the same data, model, seed and budget, one after another,
/// through the daemon or in the foreground; a table and plots of them all.
struct StudyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "study",
        abstract: "Compare algorithms (or one knob's values) on the same data, model, seed and budget; write a table and plots.",
        discussion: """
            The jobs run one after another through the daemon (as `lapwing submit`), or with \
            --foreground here without one (as `lapwing run`). Every option of `run` applies to \
            every job; an algorithm's own options go to the algorithms that have them.
            Example: lapwing study --data idx:/usr/share/datasets/fashion-mnist --model softmax \\
                       --algorithms all --epochs 2 --eval-every 0.25 --output-dir study-fmnist
            Example: lapwing study ... --algorithms local-sgd,slowmo --sweep period=1,4,16,64
            Example: lapwing study ... --algorithms minibatch,local-sgd --sweep data-split=iid,label-skew:0.1
            Writes into --output-dir: table.md and table.csv (one row per job), the plots \
            \(StudyPlots.files.joined(separator: ", ")) (SVG), and jobs/NN-NAME/ with each job's \
            metrics.jsonl and summary.json. Both are rewritten after every job: Ctrl-C (or a \
            failure) keeps what finished.
            Exit status: 0 every job completed, 1 a job failed, 2 bad arguments, 130 interrupted.

            \(Algorithms.help)
            """)

    @OptionGroup var training: TrainingOptions

    @Option(
        help: ArgumentHelp(
            "The algorithms to compare: NAME,NAME,... or all (\(Algorithms.names.joined(separator: ", "))); default: --algorithm's.",
            valueName: "names"))
    var algorithms: String?

    @Option(
        help: ArgumentHelp(
            "One job per value of a knob, for each algorithm that has it: an algorithm's or compressor's option (period=1,4,16,64) or one of \(TrainingOptions.sweepable.joined(separator: ", ")) (data-split=iid,label-skew:0.1).",
            valueName: "knob=v1,v2,..."))
    var sweep: String?

    @Option(name: .customLong("output-dir"), help: "Directory for the table, the plots and every job's metrics.")
    var outputDir: String

    @Flag(help: "Run the jobs here, without a daemon (as `lapwing run`).")
    var foreground = false

    @OptionGroup var queue: PriorityOption
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if foreground && queue.priority != nil { throw ValidationError("--priority: a daemon's queue orders by it; not with --foreground") }
    }

    func run() throws {
        try runVerb {
            let plan = try StudyPlan(training, algorithms: algorithms, sweep: sweep)
            if !foreground && training.jobID != nil {
                throw CLIFailure(message: "--job-id: the daemon names the jobs it queues; --job-id is for --foreground", code: CLIExit.usage)
            }
            let prefix = training.jobID ?? "study-\(getpid())"
            var specs: [JobSpec] = []
            for (i, job) in plan.jobs.enumerated() {
                let dir = outputDir + "/jobs/" + job.folder
                let defaultWorkers = foreground ? JobHost.defaultWorkerCount() : max(1, job.options.replicas ?? 1)
                let spec = try job.options.spec(
                    job.config, job.compression, defaultWorkers: defaultWorkers, id: "\(prefix)-\(i + 1)", outputDir: foreground ? dir : nil)
                try JobHost.preflight(spec)
                specs.append(spec)
            }
            let daemon = foreground ? nil : try client.connect()
            for job in plan.jobs {
                try FileManager.default.createDirectory(atPath: outputDir + "/jobs/" + job.folder, withIntermediateDirectories: true)
            }
            _ = lw_install_stop_handlers()
            let title = StudyPlan.title(data: specs[0].data, model: specs[0].model)
            let start = Date()
            var done: [StudyJob] = []
            var failed = false, interrupted = false
            for (i, (job, spec)) in zip(plan.jobs, specs).enumerated() {
                if lw_stop_signal() != 0 {
                    interrupted = true
                    break
                }
                let dir = outputDir + "/jobs/" + job.folder
                writeError(
                    "lapwing study: job \(i + 1)/\(specs.count): \(job.label) (\(done.count) done, \(ProgressLine.clock(Date().timeIntervalSince(start))) so far)\n")
                let tag = "[\(i + 1)/\(specs.count) \(job.label)] "
                let (summary, failure) =
                    try daemon.map { try Self.runOnDaemon(spec, defaultWorkers: job.options.workers == nil, priority: queue.priority, client: $0, dir: dir, prefix: tag) }
                    ?? ForegroundJob.run(spec, quiet: client.json, prefix: tag)
                if let summary, summary.outcome == "interrupted" || lw_stop_signal() != 0 { interrupted = true }
                if summary.map({ $0.outcome != "completed" }) ?? true {
                    if !interrupted { failed = true }
                    writeError("lapwing study: \(job.label): \(summary?.outcome ?? "failed")\((summary?.reason ?? failure).map { ": \($0)" } ?? "")\n")
                }
                if let summary {
                    let events = (try? StudyJob.readEvents(dir + "/metrics.jsonl")) ?? []
                    var words: [String] = job.sweptOption.map { [$0] } ?? []
                    if spec.dataSplit != .iid && job.sweptOption?.hasPrefix("data-split=") != true {
                        words.append("data-split=\(spec.dataSplit)")
                    }
                    let knobs = StudyJob.settings(of: summary, compression: job.sweptOption?.hasPrefix("compress=") != true)
                    if !knobs.isEmpty { words.append(knobs) }
                    done.append(
                        StudyJob(label: job.label, algorithm: job.algorithm, settings: words.joined(separator: " "), summary: summary, evaluations: events))
                    try Self.writeResults(done, title: title, specs: specs, into: outputDir)
                }
                if interrupted { break }
            }
            if client.json {
                printJSON(done.compactMap(\.summary))
            } else {
                print(StudyTable.markdown(done), terminator: "")
                writeError("lapwing study: \(done.count) of \(specs.count) jobs in \(outputDir) (table.md, table.csv, \(StudyPlots.files.count) plots)\n")
            }
            if interrupted { throw ExitCode(CLIExit.interrupted) }
            if failed { throw ExitCode(CLIExit.failure) }
        }
    }

    /// table.md, table.csv and the plots of the jobs done so far.
    static func writeResults(_ jobs: [StudyJob], title: String, specs: [JobSpec], into dir: String) throws(LapwingError) {
        let s = specs[0]
        let common =
            "Every job: \(s.data), \(s.model), \(ProgressLine.fixed(s.epochs, 2)) epochs, batch \(s.batch), lr \(s.schedule.base) \(s.schedule.kind.rawValue), "
            + "momentum \(s.sgd.momentum), seed \(s.seed), \(s.workers == 0 ? "the daemon's" : "\(s.workers)") workers (unless swept)."
        let command = CommandLine.arguments.map { $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
        let plots = StudyPlots.files.map { "![\($0)](\($0))" }.joined(separator: "\n")
        let markdown = "# Study: \(title)\n\n`\(command)`\n\n\(common)\n\n\(StudyTable.markdown(jobs))\n\(plots)\n"
        try AtomicFile.write(to: dir + "/table.md", bytes: Array(markdown.utf8))
        try AtomicFile.write(to: dir + "/table.csv", bytes: Array(StudyTable.csv(jobs).utf8))
        try StudyPlots.write(jobs, title: title, into: dir)
    }

    /// Queues `spec` on the daemon and follows it (polling, so that Ctrl-C is seen: it cancels
    /// the job), then writes its metrics and summary into `dir`.
    static func runOnDaemon(_ spec: JobSpec, defaultWorkers: Bool, priority: Int?, client: DaemonClient, dir: String, prefix: String)
        throws -> (summary: JobSummary?, failure: String?)
    {
        let record = try SubmitCommand.submit(spec, defaultWorkers: defaultWorkers, priority: priority, to: client)
        var progress = ProgressLine(prefix: prefix)
        var shown: Double?
        var cancelled = false
        var final = record
        while true {
            if lw_stop_signal() != 0 && !cancelled {
                cancelled = true
                let _: JobRecord = try client.call(.cancel, JobRef(job: record.id))
            }
            final = try client.call(.status, JobRef(job: record.id))
            if let p = final.progress, p.elapsed != shown {
                shown = p.elapsed
                progress.show(p)
            }
            if final.state.isFinished { break }
            usleep(300_000)
        }
        progress.finish()
        if final.summary != nil {
            _ = try ExportCommand.export(record.id, .metrics, from: client, to: dir + "/metrics.jsonl")
        }
        if let s = final.summary {
            try AtomicFile.write(to: dir + "/summary.json", bytes: Array((HostEvent.jsonString(s) + "\n").utf8))
        }
        var summary = final.summary
        if cancelled { summary?.outcome = "interrupted" }
        return (summary, final.reason ?? final.state.rawValue)
    }
}

/// `lapwing plot`: the study's plots for jobs run separately.
struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot",
        abstract: "Plot jobs' metrics side by side (the plots of `lapwing study`).",
        discussion: """
            Each METRICS is a job's metrics.jsonl (from `lapwing run --output-dir`, `lapwing export \
            --metrics`, or a study's jobs/); a summary.json beside it names the job's algorithm. \
            Writes \(StudyPlots.files.joined(separator: ", ")) into --output-dir.
            """)

    @Argument(help: ArgumentHelp("Jobs' metrics files (JSON lines).", valueName: "metrics"))
    var metrics: [String]

    @Option(name: .customLong("output-dir"), help: "Directory for the plots.")
    var outputDir = "."

    @Option(help: "The plots' title (default: the first job's data and model).")
    var title: String?

    func validate() throws {
        guard !metrics.isEmpty, metrics.count <= 64 else { throw ValidationError("give 1 to 64 metrics files") }
    }

    func run() throws {
        try runVerb {
            var jobs: [StudyJob] = []
            for path in metrics { jobs.append(try StudyJob.load(metrics: path)) }
            let name = title ?? jobs.first?.summary.map { StudyPlan.title(data: $0.data, model: $0.model) } ?? "jobs"
            try FileManager.default.createDirectory(atPath: outputDir, withIntermediateDirectories: true)
            for path in try StudyPlots.write(jobs, title: name, into: outputDir) { print(path) }
        }
    }
}
