import ArgumentParser
import Foundation
import LapwingCore
import LapwingOptions

#if canImport(Glibc)
import Glibc
#endif

/// `lapwing-numa`: NUMA tools (design section 11). Each tool is a subcommand in its own file;
/// add new ones to `subcommands`.
@main
struct LapwingNuma: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lapwing-numa",
        abstract: "NUMA tools for Lapwing: topology and placement, arenas, and what the nodes cost.",
        discussion: ExitStatus.summary + " (arena: 5 when the job has no arena)",
        subcommands: [TopologyCommand.self, ArenaCommand.self, BenchCommand.self, TuneCommand.self]
    )

    /// As ParsableCommand's main, but a command line the parser refuses exits 2, as in every
    /// Lapwing tool (the parser's own default is 64).
    static func main() {
        do {
            let arguments: [String]
            do {
                arguments = try JobConfigFile.expand(Array(CommandLine.arguments.dropFirst()))
            } catch {
                FileHandle.standardError.write(Data("lapwing-numa: \(error)\n".utf8))
                Foundation.exit(ExitStatus.usage)
            }
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(ExitStatus.usage)
            }
            exit(withError: error)
        }
    }
}

/// Options every subcommand shares.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Print one JSON object (sorted keys) instead of tables.")
    var json = false
}

/// Prints a failure of the environment (not of the arguments) and gives exit status 1.
func fail(_ error: LapwingError) -> ExitCode {
    let line = "lapwing-numa: \(error)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    return ExitCode.failure
}
