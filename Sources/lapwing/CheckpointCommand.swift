import ArgumentParser
import Foundation
import LapwingCore
import LapwingJob
import LapwingProtocol

#if canImport(Glibc)
import Glibc
#endif

/// `lapwing checkpoint JOB`: a checkpoint now, on top of the periodic ones (`--checkpoint-every`).
struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Have a running or paused job write its checkpoint now.",
        discussion: """
            The job's host writes every replica, the algorithm's state and its counters to the job's \
            checkpoint.safetensors (atomically: the previous one stays whole until the new one replaces \
            it), the file `lapwing resume` goes on from. Waits until it is written unless --no-wait.
            """)
    @Argument(help: "The job id.", completion: .jobIDs) var job: String
    @Flag(name: .customLong("no-wait"), help: "Return once the request is delivered, not once the checkpoint is written.")
    var noWait = false
    @Option(help: ArgumentHelp("Seconds to wait for the checkpoint (default 120).", valueName: "seconds"))
    var timeout: Double = 120
    @OptionGroup var client: ClientOptions

    func validate() throws {
        guard timeout.isFinite, timeout > 0 else { throw ValidationError("--timeout \(timeout): needs a number of seconds above 0") }
    }

    func run() throws {
        try runVerb {
            let c = try client.connect()
            let asked: JobRecord = try c.call(.checkpoint, JobRef(job: job))
            var r = asked
            if !noWait {
                let deadline = Date().addingTimeInterval(timeout)
                while (r.checkpointed ?? 0) <= (asked.checkpointed ?? 0) {
                    guard Date() < deadline else {
                        throw CLIFailure(message: "job \(job): no new checkpoint within \(ProgressLine.fixed(timeout, 0)) s", code: ExitStatus.failure)
                    }
                    usleep(100_000)
                    r = try c.call(.status, JobRef(job: job))
                    if r.state.isFinished && (r.checkpointed ?? 0) <= (asked.checkpointed ?? 0) {
                        throw CLIFailure(message: "job \(job) ended (\(r.state.rawValue)) before writing the checkpoint", code: ExitStatus.failure)
                    }
                }
            }
            if client.json { return printJSON(r) }
            if noWait {
                print("job \(r.id): checkpoint requested")
            } else {
                let samples = r.progress?.samples.map { ", at \($0) samples" } ?? ""
                print("job \(r.id): checkpoint written\(samples)")
            }
        }
    }
}
