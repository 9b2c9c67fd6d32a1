import Foundation
import LapwingCore
import LapwingJob
import Testing

@testable import LapwingEngine

/// The algorithms as strategies: options declared by each algorithm and checked against its
/// own, and no algorithm's name tested anywhere but in its file.
@Suite struct AlgorithmRegistryTests {
    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Sources")

    func message(_ body: () throws -> Void) -> String {
        do {
            try body()
            return "accepted"
        } catch {
            return "\(error)"
        }
    }

    @Test func optionsAreTheAlgorithmsOwnAndNamedInErrors() throws {
        let lap = try Algorithms.parseOptions(["--period", "8", "--averaging-warmup=0.25"], for: "lap-sgd")
        #expect(lap.knobs == ["period": 8, "averaging-warmup": 0.25])
        #expect(message { _ = try Algorithms.parseOptions(["--period", "8"], for: "hogwild") }
            .contains("--period: not an option of hogwild (it has none)"))
        #expect(message { _ = try Algorithms.parseOptions(["--period", "2.5"], for: "lap-sgd") }
            .contains("--period 2.5: lap-sgd needs a whole number from 1 to 1000000"))
        #expect(message { _ = try Algorithms.parseOptions(["--perod", "8"], for: "lap-sgd") }.contains("--perod: unknown option"))
        #expect(message { _ = try Algorithms.parseOptions(["--period"], for: "lap-sgd") }.contains("--period: needs a value"))
        #expect(message { _ = try Algorithms.parseOptions(["--wait"], for: "lap-sgd") }.contains("--wait: unknown option"))
        #expect(message { _ = try Algorithms.parseOptions([], for: "lap-sdg") }.contains("unknown algorithm"))
        var spec = JobSpec(data: "idx:/d", model: "softmax", algorithm: AlgorithmConfig(name: "hogwild"), workers: 2, replicas: 2, id: "a")
        #expect(message { try Algorithms.check(spec) }.contains("--replicas 2: hogwild trains one shared model"))
        spec.replicas = nil
        #expect(message { try Algorithms.check(spec) } == "accepted")
    }

    @Test func everyAlgorithmAndKnobIsInTheHelp() {
        for a in Algorithms.all {
            #expect(Algorithms.help.contains("  \(a.name): "))
            for k in a.knobs { #expect(Algorithms.help.contains(k.usage), "\(a.name) \(k.name)") }
        }
    }

    /// Issue #9: "grep finds no algorithm name tested outside Algorithms/ and the CLI's option
    /// parsing".
    @Test func noAlgorithmNameIsTestedOutsideItsFile() throws {
        let allowed = ["LapwingEngine/Algorithms/"]
        var offenders: [String] = []
        let files = FileManager.default.enumerator(atPath: Self.sources.path)?.compactMap { $0 as? String } ?? []
        for file in files where file.hasSuffix(".swift") && !allowed.contains(where: { file.hasPrefix($0) || file == $0 }) {
            let text = try String(contentsOf: Self.sources.appendingPathComponent(file), encoding: .utf8)
            for name in Algorithms.names where text.contains("\"\(name)\"") || text.contains("`\(name)`") {
                offenders.append("\(file): \"\(name)\"")
            }
        }
        #expect(offenders.isEmpty, "\(offenders)")
    }
}
