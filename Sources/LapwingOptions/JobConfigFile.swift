import ArgumentParser
import LapwingCore
import LapwingEngine

/// A job's options kept in a file: `lapwing run --config FILE`, `lapwing submit --config FILE`,
/// `lapwing study` and `lapwing-numa tune` read it; `lapwing-numa tune --output FILE` writes it.
/// The format is the daemon's (`KeyValueFile`, systemd-style INI): one `[Job]` section whose keys
/// are `lapwing run`'s long options without their dashes, the chosen algorithm's options
/// included (`period = 16`); flags take yes or no (`nesterov = no`).
///
///     [Job]
///     data = idx:/usr/share/datasets/fashion-mnist
///     model = mlp:784-256-10
///     algorithm = lap-sgd
///     replicas = 2
///     period = 16
///
/// The file's options go before the command line's, and an option that the command line gives
/// replaces the file's (with `--algorithm` on the command line, the file's algorithm options are
/// left out too: they were another algorithm's). Every key is checked by the same parser as the
/// command line, and an error names the file and the line.
public enum JobConfigFile {
    public static let section = "Job"

    /// `arguments` (a command line without the program's name, e.g. `run --config F --epochs 3`)
    /// with the options of its `--config FILE` inserted before the first option; unchanged when
    /// there is no `--config`.
    public static func expand(_ arguments: [String]) throws(LapwingError) -> [String] {
        let end = arguments.firstIndex(of: "--") ?? arguments.endIndex
        var path: String?
        for i in arguments.indices where i < end {
            let a = arguments[i]
            if a == "--config" {
                guard i + 1 < end else { throw LapwingError(.invalidArgument, "--config: needs a file") }
                path = arguments[i + 1]
            } else if a.hasPrefix("--config=") {
                path = String(a.dropFirst("--config=".count))
            }
        }
        guard let path else { return arguments }
        let given = commandLineOptions(arguments[..<end])
        let fromFile = try options(of: KeyValueFile.read(path, maxBytes: 64 << 10), skipping: given)
        let insertAt = arguments.firstIndex { $0.hasPrefix("-") } ?? arguments.endIndex
        return Array(arguments[..<insertAt]) + fromFile + Array(arguments[insertAt...])
    }

    /// The options of `file` as command-line arguments, checked line by line, leaving out those in
    /// `skipping` (the command line's).
    static func options(of file: KeyValueFile, skipping given: Set<String>) throws(LapwingError) -> [String] {
        for s in file.sections where s.name != section {
            throw LapwingError(.invalidArgument, "\(file.name):\(s.line): unknown section [\(s.name)]; a job file has one section, [\(section)]")
        }
        var seen: [String: Int] = [:]
        var result: [String] = []
        for e in file.entries {
            guard e.section == section else { throw e.error(in: file.name, "\(e.key) is outside the [\(section)] section") }
            guard !e.key.hasPrefix("-"), !e.key.contains(" ") else {
                throw e.error(in: file.name, "'\(e.key)': a key is an option's name without its dashes (e.g. workers = 2)")
            }
            guard e.key != "config" else { throw e.error(in: file.name, "config: a job file cannot name another") }
            if let earlier = seen[e.key] { throw e.error(in: file.name, "\(e.key) is given twice (first on line \(earlier))") }
            seen[e.key] = e.line
            guard let kind = try kind(of: e, in: file) else { continue }
            if given.contains(e.key) || (kind == .algorithmOption && given.contains("algorithm") && !Compressors.knobNames.contains(e.key)) {
                continue
            }
            switch kind {
            case .flag: result.append(try file.flag(e) ? "--\(e.key)" : "--no-\(e.key)")
            case .option, .algorithmOption: result += ["--\(e.key)", e.value]
            }
        }
        return result
    }

    enum Kind { case flag, option, algorithmOption }

    /// What `lapwing run`'s parser makes of the entry: a flag, an option of its own, or one it
    /// leaves to the algorithm (or compressor); an error when it refuses the value.
    private static func kind(of e: KeyValueFile.Entry, in file: KeyValueFile) throws(LapwingError) -> Kind? {
        let base = ["--data", "-", "--model", "-"]
        func parses(_ extra: [String]) -> (TrainingOptions?, String?) {
            do {
                return (try TrainingOptions.parse(base + extra), nil)
            } catch {
                return (nil, TrainingOptions.message(for: error))
            }
        }
        if case (let flag?, _) = parses(["--\(e.key)"]), flag.algorithmOptions.isEmpty {
            _ = try file.flag(e)
            return .flag
        }
        switch parses(["--\(e.key)", e.value]) {
        case (let parsed?, _):
            guard !parsed.algorithmOptions.isEmpty else { return .option }
            guard Algorithms.names.contains(where: { Algorithms.declares($0, knob: e.key) }) || Compressors.knobNames.contains(e.key)
            else {
                throw e.error(
                    in: file.name, "unknown key \(e.key): not an option of lapwing run, nor of any algorithm or compressor (lapwing run --help lists them)")
            }
            guard Double(e.value)?.isFinite == true else {
                throw e.error(in: file.name, "\(e.key) = \(e.value): not an option of lapwing run, and an algorithm's option needs a number")
            }
            return .algorithmOption
        case (nil, let message):
            throw e.error(in: file.name, "\(e.key) = \(e.value): \(message ?? "refused")")
        }
    }

    /// The long options a command line gives, by name (`--no-nesterov` gives nesterov).
    static func commandLineOptions(_ arguments: ArraySlice<String>) -> Set<String> {
        var names = Set<String>()
        for a in arguments where a.hasPrefix("--") && a.count > 2 {
            let name = String(a.dropFirst(2).prefix { $0 != "=" })
            names.insert(name)
            if name.hasPrefix("no-") { names.insert(String(name.dropFirst(3))) }
        }
        return names
    }

    /// Writes `options` as a job file (every option, defaults included, so that the file means the
    /// same job when defaults change), after `comments` (one `# ` line each).
    public static func write(_ options: TrainingOptions, comments: [String], to path: String) throws(LapwingError) {
        var text = comments.map { "# " + $0 + "\n" }.joined() + "[\(section)]\n"
        for (key, value) in try options.fileEntries() { text += "\(key) = \(value)\n" }
        try AtomicFile.write(to: path, bytes: Array(text.utf8))
    }
}
