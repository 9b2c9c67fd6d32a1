import Foundation
import LapwingJob
import LapwingTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// 100 submit/cancel cycles leak nothing (issue #11): no arena, no process, no descriptor.
extension DaemonTests {
@Suite struct SubmitCancelTests {
    @Test func aHundredSubmitCancelCyclesLeakNothing() throws {
        let d = try DaemonHarness(tag: "cycles")
        defer { d.cleanUp() }
        try d.start()
        let pid = d.daemon!.pid
        let baseline = openDescriptors(pid)
        let heart = "libsvm:/usr/share/doc/liblinear-tools/examples/heart_scale"
        var ids: [String] = []
        for i in 0..<100 {
            // Some are cancelled while queued, some while their host loads or trains.
            let r = try d.cli(["submit", "--json", "--data", heart, "--model", "logistic", "--workers", "1", "--epochs", "100000"])
            guard r.status == 0 else { throw TestFailure("submit \(i): \(r.stderr)") }
            let id = try decode(JobRecord.self, r.stdout).id
            ids.append(id)
            if i % 3 == 0 { usleep(30_000) }
            let c = try d.cli(["cancel", id])
            #expect(c.status == 0 || c.stderr.contains("already ended"), "cancel \(id): \(c.stderr)")
        }
        let finished = try eventually(timeout: 120) {
            try decode([JobRecord].self, d.cli(["list", "--json"]).stdout).allSatisfy { $0.state.isFinished }
        }
        #expect(finished, "jobs still running after every cancel")
        let records = try decode([JobRecord].self, d.cli(["list", "--json"]).stdout)
        #expect(records.count == 100)
        #expect(records.allSatisfy { $0.state == .cancelled }, "\(Set(records.map(\.state.rawValue)))")
        for id in ids { #expect(!FileManager.default.fileExists(atPath: "/dev/shm/lapwing.\(id)"), "arena of \(id) left") }
        #expect(eventually(timeout: 30) { descendants(of: pid).isEmpty }, "processes left: \(descendants(of: pid))")
        #expect(eventually(timeout: 30) { openDescriptors(pid) <= baseline + 2 }, "descriptors \(baseline) -> \(openDescriptors(pid))")
    }
}
}
