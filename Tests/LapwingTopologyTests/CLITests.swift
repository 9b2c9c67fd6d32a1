import Foundation
import LapwingCore
import Testing

@testable import LapwingTopology

/// The `lapwing-numa` binary SwiftPM built beside this test bundle (in `.build/<triple>/<config>`).
func lapwingNumaBinary() throws -> URL {
    let fm = FileManager.default
    let exe = (try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
    while dir.path != "/" {
        let candidate = dir.appendingPathComponent("lapwing-numa")
        if fm.isExecutableFile(atPath: candidate.path) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    throw LapwingError(.notFound, "lapwing-numa: not found in any folder above \(exe)")
}

struct Run {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs `executable` with `arguments` to completion, capturing its output.
func run(_ executable: URL, _ arguments: [String]) throws -> Run {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Drain stderr on another thread so that neither pipe can fill up and stall the child.
    let errBox = ThreadResult<Data>()
    let errHandle = err.fileHandleForReading
    Thread {
        errBox.value = errHandle.readDataToEndOfFile()
        errBox.done.signal()
    }.start()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    errBox.done.wait()
    process.waitUntilExit()
    return Run(
        status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errBox.value ?? Data(), as: UTF8.self))
}

@Suite struct CLI {
    @Test func syntheticJSON() throws {
        let r = try run(lapwingNumaBinary(), ["topology", "--synthetic", twoPackages, "--workers", "8", "--json"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let report = try JSONDecoder().decode(TopologyReport.self, from: Data(r.stdout.utf8))
        let t = try Topology.synthetic(twoPackages)
        #expect(report.topology == t)
        #expect(report.placement == (try t.place(workers: 8)))
        #expect(report.placement.workers.count == 8)
        #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count == 1)
        #expect(r.stdout.hasPrefix("{\"placement\":{\"averager\":"))  // sorted keys
    }

    @Test func humanOutput() throws {
        let r = try run(lapwingNumaBinary(), ["topology", "--synthetic", twoCores, "--workers", "2", "--replicas", "2"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        #expect(r.stdout.hasPrefix("topology: synthetic: \(twoCores)\n1 NUMA node, 1 package, 2 cores, 2 CPUs\n"))
        #expect(r.stdout.contains("placement: 2 workers, 2 replicas"))
        #expect(r.stdout.contains("averager: no free CPU"))
    }

    @Test func defaultWorkersOnePerCore() throws {
        let r = try run(lapwingNumaBinary(), ["topology", "--synthetic", twoPackages, "--json"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let report = try JSONDecoder().decode(TopologyReport.self, from: Data(r.stdout.utf8))
        #expect(report.placement.workers.count == 32)
    }

    @Test func zeroWorkersIsRefused() throws {
        let r = try run(lapwingNumaBinary(), ["topology", "--workers", "0"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--workers"))
        #expect(r.stdout.isEmpty)
    }

    @Test func syntheticAndXMLAreExclusive() throws {
        let r = try run(lapwingNumaBinary(), ["topology", "--synthetic", twoCores, "--xml", "/tmp/x.xml"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--synthetic and --xml are exclusive"))
    }

    @Test func malformedSyntheticFails() throws {
        let r = try run(lapwingNumaBinary(), ["topology", "--synthetic", "pack:nope"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("pack:nope"))
    }

    /// `taskset -c 0 lapwing-numa topology` sees only CPU 0.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/taskset")))
    func tasksetRestrictsTheMachine() throws {
        let binary = try lapwingNumaBinary()
        let r = try run(URL(fileURLWithPath: "/usr/bin/taskset"), ["-c", "0", binary.path, "topology", "--json"])
        #expect(r.status == 0, "stderr: \(r.stderr)")
        let report = try JSONDecoder().decode(TopologyReport.self, from: Data(r.stdout.utf8))
        #expect(report.topology.cpus == [0])
        #expect(report.placement.workers.map(\.cpu) == [0])
    }

    @Test func helpDescribesEveryOption() throws {
        let r = try run(lapwingNumaBinary(), ["topology", "--help"])
        #expect(r.status == 0)
        for option in ["--synthetic <STR>", "--xml <FILE>", "--workers <W>", "--replicas <R>", "--json"] {
            #expect(r.stdout.contains(option))
        }
    }
}
