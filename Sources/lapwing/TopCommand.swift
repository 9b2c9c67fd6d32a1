import ArgumentParser
import Foundation
import LapwingCore
import LapwingJob
import LapwingTopology

#if canImport(Glibc)
import Glibc
#endif

/// `lapwing top`: the running jobs as a table that refreshes, like top(1).
struct TopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top", abstract: "Show the running jobs (samples/s, loss, accuracy, cores, memory), refreshed until Ctrl-C.",
        discussion: """
            MEMORY is what the job's processes hold: its control group's memory, else the sum of their \
            proportional set sizes (the arena counted once). With --once, or when the output is not \
            a terminal, each refresh is printed as plain lines, without clearing the screen.
            """)
    @Flag(help: "Print the table once and exit (for scripts).") var once = false
    @Option(help: ArgumentHelp("Seconds between refreshes (0.5 to 3600).", valueName: "seconds")) var interval = 2.0
    @OptionGroup var client: ClientOptions

    func validate() throws {
        if !(0.5...3600).contains(interval) { throw ValidationError("--interval \(interval): needs 0.5 to 3600 seconds") }
    }

    func run() throws {
        try runVerb {
            let c = try client.connect()
            let terminal = isatty(1) == 1 && !once && !client.json
            while true {
                let jobs = try ListCommand.jobs(c)
                let running = jobs.filter { $0.state == .running || $0.state == .paused }
                if client.json {
                    printJSON(running)
                } else {
                    // Home and clear, then the frame: no flicker of an empty screen between frames.
                    if terminal { print("\u{1B}[H\u{1B}[2J", terminator: "") }
                    print(Self.frame(running, queued: jobs.filter { $0.state == .queued }.count).joined(separator: "\n"))
                }
                fflush(nil)
                if once { return }
                if !terminal { print("") }
                usleep(useconds_t(interval * 1e6))
            }
        }
    }

    /// The heading line and the table of `running`.
    static func frame(_ running: [JobRecord], queued: Int, now: Double = Date().timeIntervalSince1970) -> [String] {
        let cores = running.reduce(0) { $0 + $1.spec.workers }
        let heading = "lapwing top - \(Times.clock(now)): \(running.count) running (\(cores) \(cores == 1 ? "core" : "cores")), \(queued) queued"
        let header = ["JOB", "NAME", "USER", "STATE", "CORES", "SAMPLES/S", "EPOCH", "TRAIN LOSS", "TEST ACC", "MEMORY", "TIME"]
        let rows = running.map { j -> [String] in
            let p = j.progress
            return [
                j.id, j.spec.name ?? "-", UserDatabase.name(of: j.owner) ?? "\(j.owner)", j.state.rawValue, "\(j.spec.workers)",
                p?.samplesPerSecond.map { ProgressLine.si($0) } ?? "-",
                "\(p?.epoch.map { ProgressLine.fixed($0, 2) } ?? "-")/\(ProgressLine.fixed(j.spec.epochs, 0))",
                p?.trainLoss.map { ProgressLine.fixed($0, 4) } ?? "-",
                p?.testAccuracy.map { ProgressLine.fixed($0 * 100, 2) + "%" } ?? "-",
                j.memoryBytes.map(formatBytes) ?? "-",
                j.started.map { Times.duration(now - $0) } ?? "-",
            ]
        }
        return [heading, ""] + textTable([header] + rows, rightAligned: [4, 5, 7, 8, 9])
    }
}
