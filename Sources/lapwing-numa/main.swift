import ArgumentParser

/// NUMA-placement tools (design section 11). In this branch only `arena`; the `topology`
/// subcommand arrives with the LapwingTopology work.
///
/// Not `@main`: a file named main.swift is top-level code, and `@main` there is an error
/// unless the target is built with -parse-as-library.
struct LapwingNuma: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lapwing-numa",
        abstract: "NUMA placement tools for Lapwing.",
        subcommands: [ArenaCommand.self]
    )
}

LapwingNuma.main()
