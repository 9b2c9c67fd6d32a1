import Foundation
import LapwingJob
import LapwingTestSupport
import Testing

/// `--node-data` through the daemon: the spec carries it, the host makes the copy, and the
/// job's record (`lapwing status`) says where it is.
extension DaemonTests {
    @Suite struct NodeDataDaemon {
        @Test func statusShowsWhereTheDataCopiesAre() throws {
            let d = try DaemonHarness(tag: "nodedata")
            defer { d.cleanUp() }
            try d.start()
            let sub = try d.cli([
                "submit", "--json", "--data", "libsvm:/usr/share/doc/liblinear-tools/examples/heart_scale", "--model", "logistic",
                "--workers", "1", "--epochs", "20", "--node-data", "on",
            ])
            try #require(sub.status == 0, "submit: \(sub.stderr)")
            let record = try decode(JobRecord.self, sub.stdout)
            #expect(record.spec.nodeData == .on)
            let watch = try d.cli(["watch", record.id, "--json"])
            #expect(watch.status == 0, "watch: \(watch.stderr)")
            let status = try d.cli(["status", record.id, "--json"])
            let after = try decode(JobRecord.self, status.stdout)
            let copies = try #require(after.dataCopies, "\(status.stdout)")
            #expect(copies.count == 1 && copies[0].node == 0 && copies[0].workers == [0] && copies[0].pagesOnNode == 1)
            let text = try d.cli(["status", record.id])
            #expect(text.stdout.contains("training data copied to node 0"), "\(text.stdout)")
        }
    }
}
