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

    /// As ParsableCommand's main, but a command line the parser refuses exits 2, the status the
    /// help documents for bad arguments (the parser's own default is 64, EX_USAGE).
    static func main() {
        do {
            let arguments: [String]
            do {
                arguments = try JobConfigFile.expand(Array(CommandLine.arguments.dropFirst()))
            } catch {
                FileHandle.standardError.write(Data("lapwing: \(error)\n".utf8))
                Foundation.exit(ExitStatus.usage)
            }
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            exit(withError: error)
        }
    }
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
