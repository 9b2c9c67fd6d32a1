import Foundation
import LapwingEngine
import LapwingJob
import LapwingTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `--node-data`: per-node copies of the training set. On this one-node machine `on` makes one
/// copy bound to node 0; the workers read it (their numa_maps show its pages, on node 0, and
/// `lapwing-numa arena` names them as its readers), the job trains exactly as without it, and
/// `auto` makes none.
extension JobTests {
@Suite struct NodeDataTests {
    /// A worker's mapping of the job's copy for node `node` in its numa_maps: the policy and the
    /// pages by node ("N0" -> count); nil when it has none.
    func copyMapping(pid: pid_t, job: String, node: Int) -> (policy: String, pages: [String: Int])? {
        // Read to the end: a /proc file has no size to read up to.
        guard let file = FileHandle(forReadingAtPath: "/proc/\(pid)/numa_maps") else { return nil }
        defer { try? file.close() }
        let text = String(decoding: file.readDataToEndOfFile(), as: UTF8.self)
        for line in text.split(separator: "\n") where line.contains("/memfd:lapwing-data.\(job).node\(node)") {
            let fields = line.split(separator: " ")
            var pages: [String: Int] = [:]
            for f in fields where f.first == "N" {
                let kv = f.split(separator: "=")
                if kv.count == 2, let n = Int(kv[1]) { pages[String(kv[0])] = n }
            }
            return (String(fields[1]), pages)
        }
        return nil
    }

    /// Runs a long hogwild job on `data` with `--node-data on` and checks, while it trains, that
    /// each worker reads the node-0 copy and that all its pages are on node 0.
    func workersReadTheCopy(data: String, model: String, minimumBytes: Int) throws {
        let dir = try TestSupport.temporaryDirectory("nodedata")
        defer { TestSupport.removeTemporaryDirectory(dir) }
        let id = TestSupport.jobID("nodedata")
        let cli = try SpawnedProcess(
            TestSupport.binary("lapwing"),
            ["run", "--data", data, "--model", model, "--algorithm", "hogwild", "--workers", "2", "--epochs", "100000",
             "--eval-every", "0", "--node-data", "on", "--job-id", id, "--output-dir", dir + "/out"],
            outputIn: dir)
        defer {
            cli.signalGroup(SIGINT)
            _ = cli.wait(timeout: 30)
        }
        // Wait (no fixed sleep) until both workers have read pages of the copy.
        var readers: [pid_t: [String: Int]] = [:]
        let deadline = Date().addingTimeInterval(90)
        while Date() < deadline && readers.count < 2 {
            let workers = descendants(of: cli.pid).filter { processName($0)?.hasPrefix("lw-worker") == true }
            for w in workers {
                if let m = copyMapping(pid: w, job: id, node: 0), m.pages.values.reduce(0, +) > 0 {
                    #expect(m.policy == "bind:0", "worker \(w) maps the copy with policy \(m.policy)")
                    readers[w] = m.pages
                }
            }
            if cli.wait(timeout: 0.1) != nil { break }
        }
        try #require(readers.count == 2, "workers reading the copy: \(readers); stderr: \(cli.stderr)")
        for (w, pages) in readers {
            #expect(Set(pages.keys) == ["N0"], "worker \(w) has pages of the copy on \(pages)")
        }
        #expect(cli.stderr.contains("training data copied to node 0"), "\(cli.stderr)")

        // lapwing-numa arena finds the copy from outside: its bytes, node, and both workers reading it.
        let r = try runProgram(TestSupport.binary("lapwing-numa"), ["arena", id, "--json"])
        try #require(r.status == 0, "\(r.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let copies = try #require(report["dataCopies"] as? [[String: Any]], "\(r.stdout.suffix(2000))")
        try #require(copies.count == 1)
        #expect(copies[0]["node"] as? Int == 0 && copies[0]["policy"] as? String == "bind:0")
        #expect((copies[0]["bytes"] as? Int ?? 0) >= minimumBytes, "\(copies[0])")
        let roles = ((copies[0]["readers"] as? [[String: Any]]) ?? []).compactMap { $0["role"] as? String }.sorted()
        #expect(roles == ["worker 0", "worker 1"], "\(copies[0])")
        let text = try runProgram(TestSupport.binary("lapwing-numa"), ["arena", id])
        #expect(text.stdout.contains("data copies (numa_maps):") && text.stdout.contains("on its node"), "\(text.stdout)")

        cli.signalGroup(SIGINT)
        #expect(cli.wait(timeout: 30) == 130, "stderr: \(cli.stderr)")
        let log = (try? String(contentsOfFile: dir + "/out/host.log", encoding: .utf8)) ?? ""
        #expect(log.contains("training data copied to node 0"), "\(log)")
    }

    @Test func workersReadTheirNodesCopyOfDenseData() throws {
        try workersReadTheCopy(data: fashionMNIST, model: "softmax", minimumBytes: 60000 * 784 * 4)
    }

    @Test func workersReadTheirNodesCopyOfSparseData() throws {
        // heart_scale: 270 rows, 13 features.
        try workersReadTheCopy(data: heartScale, model: "logistic", minimumBytes: 270 * 4)
    }

    /// One worker, one seed: a job trains the same with and without the copy, to the bit (the
    /// copy holds the same rows); `auto` on one node makes no copy.
    @Test func aCopyTrainsExactlyAsTheLoadedRows() throws {
        let args = ["--data", heartScale, "--model", "logistic", "--workers", "1", "--epochs", "5", "--lr", "0.1"]
        let on = try train(args + ["--node-data", "on"], tag: "nd-on") { out in
            let log = try String(contentsOfFile: out + "/host.log", encoding: .utf8)
            #expect(log.contains("training data copied to node 0"), "\(log)")
        }
        let auto = try train(args, tag: "nd-auto") { out in
            let log = try String(contentsOfFile: out + "/host.log", encoding: .utf8)
            #expect(log.contains("one copy of the training data"), "\(log)")
        }
        #expect(on.outcome == "completed" && auto.outcome == "completed")
        #expect(on.testAccuracy == auto.testAccuracy && on.testLoss == auto.testLoss && on.trainLoss == auto.trainLoss)
    }

    @Test func aBadModeIsRefusedWithTheOption() throws {
        let r = try runProgram(
            TestSupport.binary("lapwing"), ["run", "--data", heartScale, "--model", "logistic", "--node-data", "sometimes"])
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("--node-data sometimes: choose auto, on or off"), "\(r.stderr)")
    }
}
}
