import LapwingCore
import LapwingJob
import LapwingTopology

/// The algorithms this build runs, by `--algorithm` name: the one list to extend with a new
/// algorithm's file.
public enum Algorithms {
    static let all: [any TrainingAlgorithm.Type] = [
        Hogwild.self, LapSGD.self, LppSGD.self, Minibatch.self, LocalSGD.self, HierAVG.self, SlowMo.self,
        OverlapLocal.self, BackupWorkers.self,
    ]

    /// The names, in the order of `all`.
    public static var names: [String] { all.map { $0.name } }

    /// The asynchronous algorithms: those whose workers never wait for each other (the ones
    /// `lapwing-numa tune` chooses among).
    public static var asynchronousNames: [String] { all.filter { $0.workersCanBeReplaced }.map { $0.name } }

    /// The default of `--algorithm`.
    public static let defaultName = LapSGD.name

    /// Checks the algorithm a spec names, its knobs and its compressor (errors name the option).
    public static func check(_ spec: JobSpec) throws(LapwingError) {
        try checkMachineLevel(try resolve(spec), spec)
        _ = try compression(spec)
    }

    /// The spec's compressor, checked against the algorithm: one without an exchange to
    /// compress refuses it, naming those that have one.
    static func compression(_ spec: JobSpec) throws(LapwingError) -> Compression? {
        let resolved = try Compressors.resolve(spec)
        guard let compression = resolved else { return nil }
        if site(of: spec.algorithm.name) == nil {
            throw LapwingError(
                .invalidArgument,
                "--compress \(compression.config.name): \(spec.algorithm.name) exchanges nothing that can be compressed (its workers share one replica, or it sums gradients as they arrive)",
                detail: "--compress works with \(compressible)")
        }
        return compression
    }

    private static func site(of name: String) -> CompressionSite? {
        for a in all where a.name == name { return a.compressionSite }
        return nil
    }

    /// The algorithms that take `--compress`, as a list for messages.
    static var compressible: String {
        var names: [String] = []
        for a in all where a.compressionSite != nil { names.append(a.name) }
        return names.joined(separator: ", ")
    }

    /// A spec that resumes from a checkpoint must name an algorithm whose workers never wait for
    /// each other: a synchronous worker's place in its plan (its step and barrier round) is not
    /// in the checkpoint yet.
    public static func checkResumable(_ spec: JobSpec) throws(LapwingError) {
        guard spec.resumeFrom != nil else { return }
        var asynchronous = false
        for a in all where a.name == spec.algorithm.name { asynchronous = a.workersCanBeReplaced }
        guard asynchronous else {
            throw LapwingError(
                .invalidArgument, "--resume-from: \(spec.algorithm.name) is synchronous; resuming it is not supported yet",
                detail: "hogwild, lap-sgd and lpp-sgd resume")
        }
    }

    /// The arena an algorithm needs with the spec's compression.
    static func arenaNeeds(_ algorithm: any TrainingAlgorithm, spec: JobSpec, replicas: Int) -> ArenaNeeds {
        var needs = algorithm.arenaNeeds(replicas: replicas)
        if spec.compression.map({ $0.name != "none" }) == true, let site = type(of: algorithm).compressionSite {
            needs = needs.adding(Compression.needs(site))
        }
        if hasLockstepMachineLevel(algorithm, spec) { needs.barriers += 1 }
        return needs
    }

    /// The algorithm a spec names, with its knobs checked and resolved.
    static func resolve(_ spec: JobSpec) throws(LapwingError) -> any TrainingAlgorithm {
        guard let type = all.first(where: { $0.name == spec.algorithm.name }) else {
            throw LapwingError(
                .invalidArgument, "--algorithm \(spec.algorithm.name): unknown algorithm",
                detail: "choose one of \(names.joined(separator: ", "))")
        }
        return try make(type, spec)
    }

    private static func make<A: TrainingAlgorithm>(_ type: A.Type, _ spec: JobSpec) throws(LapwingError) -> A {
        try A(spec: spec, knobs: Knobs(spec.algorithm, declared: A.knobs))
    }

    /// Reads algorithm options from a command line's leftover arguments (`--period 16` or
    /// `--period=16`) for the algorithm `name`; errors name the option.
    public static func parseOptions(_ arguments: [String], for name: String) throws(LapwingError) -> AlgorithmConfig {
        try parseOptions(arguments, for: name, compress: nil).algorithm
    }

    /// `parseOptions(_:for:)` with `--compress TEXT` (nil: none): the compressor's options
    /// (`--dq-decay 0.98`) go to the compressor, the others to the algorithm.
    public static func parseOptions(_ arguments: [String], for name: String, compress: String?) throws(LapwingError)
        -> (algorithm: AlgorithmConfig, compression: AlgorithmConfig?)
    {
        var knobs = try optionValues(arguments)
        let named = try compress.map { text throws(LapwingError) in try Compressors.parse(text) } ?? nil
        let compression = try Compressors.take(&knobs, into: named)
        let config = AlgorithmConfig(name: name, knobs: knobs)
        // Checked now, against the algorithm's own options, so that a typo is named at once.
        guard let type = all.first(where: { $0.name == name }) else {
            throw LapwingError(
                .invalidArgument, "--algorithm \(name): unknown algorithm", detail: "choose one of \(names.joined(separator: ", "))")
        }
        do throws(LapwingError) {
            _ = try Knobs(config, declared: type.knobs)
        } catch {
            let known = Set(all.flatMap { $0.knobs.map(\.name) })
            if let unknown = knobs.keys.sorted().first(where: { !known.contains($0) }) {
                throw LapwingError(.invalidArgument, "--\(unknown): unknown option", detail: "lapwing run --help lists the options")
            }
            throw error
        }
        return (config, compression)
    }

    /// `parseOptions` for several algorithms that run side by side (a study): each takes the
    /// options it declares and the compressor's; an option that none of them takes is refused.
    public static func parseOptions(_ arguments: [String], forEach chosen: [String], compress: String?) throws(LapwingError)
        -> [(algorithm: AlgorithmConfig, compression: AlgorithmConfig?)]
    {
        let values = try optionValues(arguments)
        var used = Set<String>()
        var result: [(algorithm: AlgorithmConfig, compression: AlgorithmConfig?)] = []
        for name in chosen {
            guard let type = all.first(where: { $0.name == name }) else {
                throw LapwingError(
                    .invalidArgument, "--algorithms \(name): unknown algorithm", detail: "choose from \(names.joined(separator: ", ")) or all")
            }
            let takes = Set(type.knobs.map(\.name)).union(Compressors.knobNames)
            let own = values.filter { takes.contains($0.key) }
            used.formUnion(own.keys)
            result.append(try parseOptions(own.sorted { $0.key < $1.key }.map { "--\($0.key)=\($0.value)" }, for: name, compress: compress))
        }
        if let unused = values.keys.sorted().first(where: { !used.contains($0) }) {
            throw LapwingError(
                .invalidArgument, "--\(unused): not an option of \(chosen.joined(separator: ", "))",
                detail: "lapwing run --help lists each algorithm's options")
        }
        return result
    }

    /// The default of algorithm `name`'s option `knob` (nil: it has no such option).
    public static func defaultKnob(_ name: String, _ knob: String) -> Double? {
        all.first { $0.name == name }?.knobs.first { $0.name == knob }?.defaultValue
    }

    /// The replicas a job with this spec has on a machine of `numaNodes` nodes (nil: the spec
    /// does not resolve).
    public static func replicas(_ spec: JobSpec, numaNodes: Int) -> Int? {
        try? resolve(spec).replicaCount(numaNodes: Topology.workerNodeCount(nodesWithCPUs: numaNodes, workers: spec.workers))
    }

    /// Whether algorithm `name` declares the option `knob`.
    public static func declares(_ name: String, knob: String) -> Bool {
        all.first { $0.name == name }?.knobs.contains { $0.name == knob } ?? false
    }

    /// `--NAME VALUE` or `--NAME=VALUE` pairs as numbers by name; errors name the option.
    private static func optionValues(_ arguments: [String]) throws(LapwingError) -> [String: Double] {
        var knobs: [String: Double] = [:]
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            guard a.hasPrefix("--"), a.count > 2 else {
                throw LapwingError(.invalidArgument, "unexpected argument '\(a)'", detail: "options are --NAME VALUE")
            }
            var key = String(a.dropFirst(2))
            var value: String
            if let eq = key.firstIndex(of: "=") {
                value = String(key[key.index(after: eq)...])
                key = String(key[..<eq])
            } else {
                // A flag the command line does not know (`--wait`) lands here too: name it as unknown,
                // not as an algorithm option without its value.
                let known = Set(all.flatMap { $0.knobs.map(\.name) }).union(Compressors.knobNames)
                guard known.contains(key) else {
                    throw LapwingError(.invalidArgument, "--\(key): unknown option", detail: "lapwing run --help lists the options")
                }
                guard i + 1 < arguments.count else { throw LapwingError(.invalidArgument, "--\(key): needs a value") }
                i += 1
                value = arguments[i]
            }
            guard let v = Double(value), v.isFinite else {
                throw LapwingError(.invalidArgument, "--\(key) \(value): needs a number")
            }
            guard knobs[key] == nil else { throw LapwingError(.invalidArgument, "--\(key): given twice") }
            knobs[key] = v
            i += 1
        }
        return knobs
    }

    /// Every algorithm and its options with their defaults, for `--help` and the man page.
    public static var help: String {
        var lines = ["Algorithms (--algorithm NAME) and their own options, with defaults:"]
        for a in all {
            lines.append("  \(a.name): \(a.summary)")
            for k in a.knobs { lines.append("      \(k.usage)  \(k.help)") }
        }
        lines.append("")
        lines.append(Compressors.help)
        lines.append("  (with \(compressible))")
        return lines.joined(separator: "\n")
    }
}
