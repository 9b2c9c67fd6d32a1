import ArgumentParser

@main
struct Lapwing: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lapwing",
        abstract: "Train models with asynchronous and local SGD on every core of one Linux box.",
        version: LapwingVersion.string,
        subcommands: [RunCommand.self, JobHostCommand.self, VersionCommand.self]
    )
}

enum LapwingVersion {
    static let string = "0.1.0"
}

struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print Lapwing's version.")
    func run() { print("lapwing \(LapwingVersion.string)") }
}
