import Foundation
import LapwingDaemon
import LapwingEngine
import LapwingJob
import LapwingProtocol
import LapwingTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

let fashionMNIST = "idx:/usr/share/datasets/fashion-mnist"

/// Every test that starts a daemon, one at a time.
@Suite(.serialized) struct DaemonTests {}

func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
    guard let line = text.split(separator: "\n").last else { throw TestFailure("no output") }
    return try JSONDecoder().decode(T.self, from: Data(line.utf8))
}

extension DaemonTests {
    @Suite struct EndToEnd {
        @Test func submitWatchExportThroughTheDaemon() throws {
            let d = try DaemonHarness(tag: "e2e")
            defer { d.cleanUp() }
            try d.start()
            let sub = try d.cli(["submit", "--json", "--data", fashionMNIST, "--model", "softmax", "--workers", "2",
                                 "--replicas", "2", "--epochs", "2"])
            #expect(sub.status == 0, "submit: \(sub.stderr)")
            let record = try decode(JobRecord.self, sub.stdout)
            #expect(record.owner == getuid())
            let watch = try d.cli(["watch", record.id, "--json"])
            #expect(watch.status == 0, "watch: \(watch.stderr)")
            let summary = try decode(JobSummary.self, watch.stdout)
            #expect(summary.outcome == "completed" && (summary.testAccuracy ?? 0) > 0.8)

            let list = try d.cli(["list", "--json"])
            let jobs = try decode([JobRecord].self, list.stdout)
            #expect(jobs.contains { $0.id == record.id && $0.state == .succeeded })

            let model = d.dir + "/exported.safetensors"
            let export = try d.cli(["export", record.id, "-o", model])
            #expect(export.status == 0, "export: \(export.stderr)")
            let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().path
            let py = try runProgram("/usr/bin/env", ["python3", repo + "/tools/eval_model.py", model, "--data", fashionMNIST])
            #expect(py.status == 0, "eval_model.py: \(py.stderr)")
            let scored = try JSONSerialization.jsonObject(with: Data(py.stdout.utf8)) as? [String: Any]
            let accuracy = try #require(scored?["accuracy"] as? Double)
            #expect(abs(accuracy - (summary.testAccuracy ?? -1)) <= 0.001)
            #expect(!FileManager.default.fileExists(atPath: "/dev/shm/lapwing.\(record.id)"))

            // The evaluations come back the same way: one JSON object per line, the last one
            // with the reported accuracy.
            let metricsFile = d.dir + "/metrics.jsonl"
            let metrics = try d.cli(["export", record.id, "--metrics", "-o", metricsFile])
            #expect(metrics.status == 0, "export --metrics: \(metrics.stderr)")
            let lines = try String(contentsOfFile: metricsFile, encoding: .utf8).split(separator: "\n")
            #expect(lines.count >= 2, "one evaluation per epoch: \(lines.count) lines")
            let last = try JSONSerialization.jsonObject(with: Data(lines.last!.utf8)) as? [String: Any]
            #expect(abs((last?["testAccuracy"] as? Double ?? -1) - (summary.testAccuracy ?? -2)) < 1e-9)
        }

        @Test func anotherUserCanListButNotTouchSomeoneElsesJob() throws {
            let d = try DaemonHarness(tag: "uid")
            defer { d.cleanUp() }
            try d.start()
            let sub = try d.cli(["submit", "--json", "--data", fashionMNIST, "--model", "softmax", "--workers", "1",
                                 "--epochs", "0.2"])
            #expect(sub.status == 0, "submit: \(sub.stderr)")
            let id = try decode(JobRecord.self, sub.stdout).id
            let list = try d.cli(["list"], asNobody: true)
            #expect(list.status == 0, "list as nobody: \(list.stderr)")
            #expect(list.stdout.contains(id))
            for verb in [["pause", id], ["cancel", id], ["export", id, "-o", "/tmp/nobody-\(id).safetensors"]] {
                let r = try d.cli(verb, asNobody: true)
                #expect(r.status == 4, "\(verb[0]) as nobody exited \(r.status): \(r.stderr)")
                #expect(r.stderr.contains("belongs to uid \(getuid())"), "\(verb[0]): \(r.stderr)")
            }
            _ = try d.cli(["watch", id])
        }

        @Test func sigtermInterruptsTheJobCleanlyAndARestartListsIt() throws {
            let d = try DaemonHarness(tag: "term")
            defer { d.cleanUp() }
            try d.start()
            let id = try d.submit(["--model", "mlp:784-256-10", "--workers", "2", "--replicas", "2", "--epochs", "500"]).id
            let arena = "/dev/shm/lapwing.\(id)"
            let deadline = Date().addingTimeInterval(60)
            // Host, two workers and the averager.
            var pids: [pid_t] = []
            while Date() < deadline && (pids.count < 4 || !FileManager.default.fileExists(atPath: arena)) {
                usleep(20_000)
                pids = descendants(of: d.daemon!.pid)
            }
            #expect(FileManager.default.fileExists(atPath: arena))
            #expect(pids.count >= 4)
            #expect(d.stop() == 0)
            #expect(!FileManager.default.fileExists(atPath: arena), "arena left behind")
            for pid in pids { #expect(kill(pid, 0) != 0, "process \(pid) left behind") }
            try d.start()
            let status = try d.cli(["status", id, "--json"])
            let record = try decode(JobRecord.self, status.stdout)
            #expect(record.state == .interrupted, "state \(record.state) (\(record.reason ?? ""))")
            #expect(record.reason?.isEmpty == false)
        }

        @Test func listPagesBackThroughEveryJob() throws {
            let d = try DaemonHarness(tag: "list")
            defer { d.cleanUp() }
            try d.start()
            var ids: [String] = []
            for _ in 0..<3 {
                ids.append(try d.submit(["--model", "softmax", "--workers", "1", "--epochs", "0.05"]).id)
            }
            for id in ids { _ = try d.cli(["watch", id]) }
            let all = try decode([JobRecord].self, d.cli(["list", "--json"]).stdout)
            #expect(all.map(\.id) == ids, "oldest first")
            let last2 = try decode([JobRecord].self, d.cli(["list", "--json", "--last", "2"]).stdout)
            #expect(last2.map(\.id) == Array(ids.suffix(2)))
            // Through the protocol: a page of one, then the page before it.
            let client = try ControlClient(path: d.socket)
            let newest = try client.call(.list, args: ListArgs(limit: 1))
            #expect(newest.arrayValue?.compactMap { $0["id"]?.stringValue } == [ids[2]])
            let earlier = try client.call(.list, args: ListArgs(before: ids[1], limit: 100))
            #expect(earlier.arrayValue?.compactMap { $0["id"]?.stringValue } == [ids[0]])
            #expect(try client.call(.list, args: ListArgs(before: ids[0])).arrayValue?.isEmpty == true)
            // Bad arguments exit 2, as the help says (not the parser's 64).
            let bad = try d.cli(["list", "--last", "0"])
            #expect(bad.status == 2, "\(bad.stderr)")
            let unknown = try d.cli(["list", "--frobnicate"])
            #expect(unknown.status == 2 && unknown.stderr.contains("--frobnicate"), "\(unknown.stderr)")
        }

        @Test func admissionQueuesForCoresAndRefusesAnArenaThatCannotFit() throws {
            let d = try DaemonHarness(tag: "admit")
            defer { d.cleanUp() }
            try d.start()
            // An arena larger than all of /dev/shm: refused at once, nothing queued.
            var fs = statvfs()
            #expect(statvfs("/dev/shm", &fs) == 0)
            let shmTotal = Double(fs.f_blocks) * Double(fs.f_frsize)
            let parameters: Int = 784 * 1_000_000 + 1_000_000 + 1_000_000 * 1000 + 1000 + 1000 * 10 + 10
            let perReplica = 4.0 * Double(parameters)
            let replicas = String(Int(shmTotal / perReplica) + 1)
            let huge = try d.cli(["submit", "--data", fashionMNIST, "--model", "mlp:784-1000000-1000-10",
                                  "--workers", replicas, "--replicas", replicas])
            #expect(huge.status == 1, "submit of a too-large job exited \(huge.status): \(huge.stderr)")
            #expect(huge.stderr.contains("of /dev/shm for its arena"), "stderr: \(huge.stderr)")
            #expect(try decode([JobRecord].self, d.cli(["list", "--json"]).stdout).isEmpty)

            // A job on every core, then one more: the second waits for cores, and a watcher of
            // it hears when it is cancelled in the queue.
            let cores = String(ProcessInfo.processInfo.activeProcessorCount)
            let first = try d.submit(["--model", "softmax", "--workers", cores, "--epochs", "500"])
            let second = try d.submit(["--model", "softmax", "--workers", "1", "--epochs", "1"])
            #expect(second.state == .queued)
            #expect(second.reason?.contains("waiting for 1 free core (") == true, "\(second.reason ?? "")")
            let lapwing = try TestSupport.binary("lapwing")
            let watcher = try SpawnedProcess(
                lapwing, ["watch", second.id, "--socket", d.socket], outputIn: d.dir, environment: d.environment)
            usleep(300_000)
            let cancel = try d.cli(["cancel", second.id, "--json"])
            #expect(cancel.status == 0, "cancel: \(cancel.stderr)")
            #expect(watcher.wait(timeout: 10) != nil, "watch of a job cancelled in the queue did not end")
            #expect((watcher.stdout + watcher.stderr).contains("cancelled"), "\(watcher.stdout) \(watcher.stderr)")
            #expect(try decode(JobRecord.self, d.cli(["status", second.id, "--json"]).stdout).state == .cancelled)
            _ = try d.cli(["cancel", first.id])
            _ = try d.cli(["watch", first.id])
        }
    }
}
