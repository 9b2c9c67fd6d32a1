import ArgumentParser
import Foundation
import LapwingCore

/// The `main` of `lapwing` and `lapwing-numa`: as ParsableCommand's, but the options of a job
/// file (`--config FILE`) are expanded into the command line first, and a command line the
/// parser refuses (or a job file it cannot use) exits 2, the status every Lapwing tool documents
/// for bad arguments (the parser's own default is 64, EX_USAGE).
public enum ToolMain {
    public static func run<Root: ParsableCommand>(_ root: Root.Type, name: String) -> Never {
        do {
            let arguments: [String]
            do {
                arguments = try JobConfigFile.expand(Array(CommandLine.arguments.dropFirst()))
            } catch {
                FileHandle.standardError.write(Data("\(name): \(error)\n".utf8))
                Foundation.exit(ExitStatus.usage)
            }
            var command = try Root.parseAsRoot(arguments)
            try command.run()
            Foundation.exit(0)
        } catch {
            if Root.exitCode(for: error) == .validationFailure {
                FileHandle.standardError.write(Data((Root.fullMessage(for: error) + "\n").utf8))
                Foundation.exit(ExitStatus.usage)
            }
            Root.exit(withError: error)
        }
    }
}
