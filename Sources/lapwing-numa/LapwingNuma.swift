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

    /// Job files expanded, bad arguments exit 2 (`ToolMain`).
    static func main() { ToolMain.run(Self.self, name: "lapwing-numa") }
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
