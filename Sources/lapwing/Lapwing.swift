import ArgumentParser
import Foundation
import LapwingCore
import LapwingJob
import LapwingOptions
import LapwingProtocol

@main
struct Lapwing: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lapwing",
        abstract: "Train models with asynchronous and local SGD on every core of one Linux box.",
        discussion: ExitStatus.summary,
        version: LapwingVersion.string,
        subcommands: [
            RunCommand.self, SubmitCommand.self, StudyCommand.self, PlotCommand.self, ListCommand.self, StatusCommand.self,
            WatchCommand.self, PauseCommand.self, ResumeCommand.self, CancelCommand.self, CheckpointCommand.self,
            RemoveCommand.self, ExportCommand.self, LogsCommand.self, TopCommand.self,
            DaemonTopologyCommand.self, VersionCommand.self, JobHostCommand.self,
        ]
    )

    /// Job files expanded, bad arguments exit 2 (`ToolMain`).
    static func main() { ToolMain.run(Self.self, name: "lapwing") }
}

enum LapwingVersion {
    static let string = "0.1.0"
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "version", abstract: "Print the CLI's version and, when one is reachable, the daemon's.")
    @OptionGroup var client: ClientOptions

    func run() throws {
        let daemon = try? client.connect().call(.version) as VersionResult
        if client.json {
            printJSON(["client": "lapwing \(LapwingVersion.string)", "daemon": daemon?.server ?? "unreachable"])
        } else {
            print("lapwing \(LapwingVersion.string)")
            print(daemon.map { "\($0.server) (protocol \($0.protocolVersion), \($0.mode) mode)" } ?? "lapwingd: not reachable")
        }
    }
}
