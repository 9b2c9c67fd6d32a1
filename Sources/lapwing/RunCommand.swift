import ArgumentParser
import CLapwing
import Foundation
import LapwingCore
import LapwingEngine
import LapwingJob
import LapwingOptions

/// `lapwing run`: one job in the foreground, without a daemon.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Train one model in the foreground, without a daemon.",
        discussion: """
            Example: lapwing run --data idx:/usr/share/datasets/fashion-mnist --model mlp:784-256-10 \\
                       --algorithm lap-sgd --workers 2 --replicas 2 --epochs 5
            Writes model.safetensors, metrics.jsonl and summary.json into --output-dir.
            Exit status: 0 trained, 1 failed, 2 bad arguments, 130 interrupted (Ctrl-C).

            \(Algorithms.help)
            """
    )

    @OptionGroup var training: TrainingOptions

    @Option(
        name: .customLong("resume-from"),
        help: ArgumentHelp(
            "Continue from a checkpoint (a job's checkpoint.safetensors): same model, algorithm, workers and replicas; the schedule and the sample budget go on where it stopped (hogwild, lap-sgd, lpp-sgd). With --mpi every rank resumes from this one file (rank 0's, which ends with the machines' common model), at the same path on every machine.",
            valueName: "checkpoint"))
    var resumeFrom: String?

    @Option(name: .customLong("output-dir"), help: "Directory for the model, metrics and summary (default: lapwing-runs/<job-id>).")
    var outputDir: String?

    @Flag(help: "Print the summary as one JSON object.")
    var json = false

    @Flag(
        help: ArgumentHelp(
            "Be one rank of a job across machines, started by mpirun or srun: each rank trains its share of the rows, and a bridge averages the machines' models through Open MPI; rank 0 prints the summary and writes into --output-dir, rank R into its rank-R/ (lap-sgd, lpp-sgd, local-sgd, hier-avg, slowmo)."))
    var mpi = false

    @Option(
        name: .customLong("mpi-timeout"), parsing: .unconditional,
        help: ArgumentHelp(
            "With --mpi: seconds a machine's bridge waits for the other machines in one exchange before it gives up (default \(Int(MachineRank.defaultTimeout))). A network split kills no process: without an answer in time the job fails on every machine, each with its model written as it stands. It must exceed the longest legitimate wait: another machine loading its data before the first exchange, a slow machine's steps and rounds.",
            valueName: "seconds"))
    var mpiTimeout: Double?

    @Option(
        name: .customLong("mpi-rendezvous"),
        help: ArgumentHelp(
            "With --mpi, ranks started without mpirun or srun (by hand, a scheduler, a container runtime): rank 0 starts an ompi-server and writes its URI into this file, which every machine must see (a shared file system); every rank reads it and joins there. Give each rank --mpi-rank and --mpi-ranks.",
            valueName: "file"))
    var mpiRendezvous: String?

    @Option(name: .customLong("mpi-rank"), help: ArgumentHelp("With --mpi-rendezvous: this rank, 0 to N-1.", valueName: "R"))
    var mpiRank: Int?

    @Option(name: .customLong("mpi-ranks"), help: ArgumentHelp("With --mpi-rendezvous: the job's ranks N.", valueName: "N"))
    var mpiRanks: Int?

    func run() throws {
        let spec: JobSpec
        do {
            var id = "run-\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
            var dir = outputDir ?? "lapwing-runs/\(training.jobID ?? id)"
            let machine = mpi ? try MachineRun.rank(timeout: mpiTimeout, rendezvous: mpiRendezvous, rank: mpiRank, ranks: mpiRanks) : nil
            if !mpi, let mpiTimeout {
                throw LapwingError(.invalidArgument, "--mpi-timeout \(MachineRank.secondsText(mpiTimeout)): only a job across machines (--mpi) has one")
            }
            if !mpi, mpiRendezvous != nil || mpiRank != nil || mpiRanks != nil {
                throw LapwingError(.invalidArgument, "--mpi-rendezvous, --mpi-rank, --mpi-ranks: only with --mpi")
            }
            if let machine { (id, dir) = MachineRun.names(machine, jobID: training.jobID, outputDir: outputDir) }
            var made = try training.spec(defaultWorkers: JobHost.defaultWorkerCount(), id: id, outputDir: dir)
            if let machine {
                made.id = id
                made.machine = machine
                try made.validate()
                try Algorithms.check(made)
            }
            if let resumeFrom {
                guard FileManager.default.isReadableFile(atPath: resumeFrom) else {
                    throw LapwingError(.notFound, "--resume-from \(resumeFrom): no such file, or not readable")
                }
                made.resumeFrom = URL(fileURLWithPath: resumeFrom).standardizedFileURL.path
            }
            spec = made
            try JobHost.preflight(spec)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch let e as LapwingError {
            throw ValidationError(e.description)
        }
        _ = lw_install_stop_handlers()
        // A rank but 0 shows nothing but its failure; a rank's host follows its bridge, which
        // mpirun stops, instead of a signal passed on.
        let rank = spec.machine?.rank ?? 0
        let (summary, failure) = try ForegroundJob.run(spec, quiet: json || rank > 0, forwardStops: spec.machine == nil)
        if rank > 0, let summary, summary.outcome == "completed" { return }
        if rank > 0, let summary {
            writeError("lapwing: rank \(rank): job \(spec.id) \(summary.outcome)\(summary.reason.map { " (\($0))" } ?? "")\n")
            throw ExitCode.failure
        }
        if let summary {
            if json {
                print(HostEvent.jsonString(summary))
            } else {
                Self.printSummary(summary)
            }
            if summary.outcome == "interrupted" { throw ExitCode(130) }
            if summary.outcome != "completed" { throw ExitCode.failure }
        } else {
            writeError("lapwing: job \(spec.id) failed: \(failure ?? "unknown error")\n")
            throw ExitCode.failure
        }
    }

    static func printSummary(_ s: JobSummary) {
        let acc = s.testAccuracy.map { ProgressLine.fixed($0 * 100, 2) + "%" } ?? "n/a"
        let loss = s.testLoss.map { ProgressLine.fixed($0, 4) } ?? "n/a"
        print(
            """
            job \(s.job) \(s.outcome)\(s.reason.map { " (\($0))" } ?? "")
              \(s.algorithm) \(s.model) on \(s.data): \(s.workers) workers, \(s.replicas) replica(s), batch \(s.batch)
              \(ProgressLine.fixed(s.epochs, 2)) epochs, \(s.samples) samples in \(ProgressLine.fixed(s.trainSeconds, 2)) s: \(ProgressLine.si(s.samplesPerSecond)) samples/s
              test accuracy \(acc), test loss \(loss) on \(s.testRows) rows
              averaging: \(s.averagingRounds) rounds, \(ProgressLine.fixed(Double(s.averagingBytes) / 1e9, 2)) GB in \(ProgressLine.fixed(s.averagingSeconds, 2)) s\(s.compression.map { ", compressed: \($0)" } ?? "")
              model: \(s.modelPath ?? "-")
              metrics: \(s.metricsPath ?? "-")
              log: \(s.metricsPath.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path + "/host.log" } ?? "-")
            """)
        if let machines = s.machines {
            let perRound = s.machineBytesPerRound ?? 0
            print(
                "  machines: \(machines) ranks through MPI, \(s.machineRounds ?? 0) rounds of \(perRound) bytes per rank "
                    + "(\(ProgressLine.fixed(Double(s.machineBytes ?? 0) / 1e6, 1)) MB) in \(ProgressLine.fixed(s.machineSeconds ?? 0, 2)) s")
        }
    }
}


/// One job trained by a job host child of this process (`run`, `study --foreground`).
enum ForegroundJob {
    /// Runs `spec` until its host ends, showing progress on stderr unless `quiet` (each line
    /// after `prefix`); a stop signal this process alone received is passed on to the host
    /// (install the stop handlers first). Returns the summary, or why there is none.
    /// With `--on-divergence backoff`, a host whose training diverged is followed by another
    /// with half the learning rate, from the job's last checkpoint (`JobHost.backoff`).
    static func run(_ spec: JobSpec, quiet: Bool, prefix: String = "", forwardStops: Bool = true) throws -> (
        summary: JobSummary?, failure: String?
    ) {
        var (summary, failure) = try runHost(spec, quiet: quiet, prefix: prefix, forwardStops: forwardStops)
        var current = spec
        var backoffs = 0
        while let next = JobHost.backoff(
            current, after: summary, checkpoint: current.outputDir.map { $0 + "/" + Checkpoint.fileName }, done: backoffs)
        {
            backoffs += 1
            writeError("lapwing: job \(spec.id): \(JobHost.describeBackoff(next, count: backoffs, of: current.divergenceBackoffs ?? 0))\n")
            current = next
            (summary, failure) = try runHost(current, quiet: quiet, prefix: prefix, forwardStops: forwardStops)
        }
        return (summary, failure)
    }

    /// One job host, to its end.
    static func runHost(_ spec: JobSpec, quiet: Bool, prefix: String, forwardStops: Bool) throws -> (
        summary: JobSummary?, failure: String?
    ) {
        // The host's log goes beside its model; the terminal keeps the progress line.
        let host = try HostProcess(
            executable: currentExecutablePath(), arguments: ["job-host"], spec: spec,
            stderrPath: spec.outputDir.map { $0 + "/host.log" })
        var progress = ProgressLine(prefix: prefix)
        var summary: JobSummary?
        var failure: String?
        var forwarded = false
        while let events = host.events(timeout: 0.2) {
            for e in events {
                switch e.event {
                case .started:
                    if let s = e.started, !quiet {
                        progress.finish()
                        writeError(
                            "lapwing: job \(spec.id): \(spec.algorithm.description), \(s.workers.count) workers on cpus \(s.workerCPUs), "
                                + "\(s.replicas) replica(s), \(s.parameters) parameters, arena \(s.arena), BLAS \(s.blas)"
                                + "\(s.dataCopies == nil ? "" : ", " + DataCopy.describe(s.dataCopies))\n")
                    }
                case .progress, .evaluation: if !quiet { progress.show(e) }
                case .rendezvous: break  // only a daemon's rank 0 across machines publishes one
                case .finished: summary = e.summary
                case .failed: failure = e.error
                }
            }
            // Ctrl-C at a terminal reaches the host too; a signal sent to us alone is passed on.
            if lw_stop_signal() != 0 && !forwarded && forwardStops {
                forwarded = true
                host.kill(SIGINT)
            }
        }
        progress.finish()
        let status = host.wait() ?? 0
        if summary == nil && failure == nil {
            // The host died without a word (e.g. kill -9): clean up what it cannot.
            JobHost.cleanUpAfterLostHost(spec)
            failure = "the job host \(describeWaitStatus(status))"
        }
        return (summary, failure)
    }
}

/// `lapwing job-host`: the process that owns one job (started by `run` and by the daemon).
struct JobHostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "job-host",
        abstract: "Run one job whose spec arrives as JSON on stdin, reporting events as JSON lines (internal).",
        shouldDisplay: false
    )

    func run() throws {
        throw ExitCode(JobHost.runFromStandardIO())
    }
}
