import Foundation
import LapwingDaemon
import LapwingEngine
import LapwingJob
import LapwingProtocol
import LapwingTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Issue #8: what a hostile or careless client sends is refused before use, and the daemon goes on
/// serving everyone else.
extension DaemonTests {
    @Suite struct HostileClients {
        /// A submit through the protocol with `files` described and these descriptors attached.
        static func submit(_ client: ControlClient, spec: JSONValue, files: [FileRole], fds: [Int32]) throws -> JSONValue {
            try client.call(.submit, args: SubmitArgs(spec: spec, files: files), fds: fds)
        }

        static func libsvmFile(_ dir: String) throws -> String {
            let path = dir + "/tiny.svm"
            try "1 1:0.5 2:1\n-1 1:-0.5 2:-1\n1 1:0.7\n-1 2:-0.3\n".write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }

        static func clientSpec(data: String) throws -> JSONValue {
            guard case .object(var fields) = try JSONValue(encoding: JobSpec(data: data, model: "logistic", algorithm: AlgorithmConfig(name: "hogwild"), workers: 1, epochs: 1, id: "x"))
            else { throw TestFailure("a spec is not an object") }
            for f in JobSpec.launcherFields { fields[f] = nil }
            return .object(fields)
        }

        func expectRefused(_ body: () throws -> JSONValue, code: ErrorCode, mentioning text: String) {
            do {
                let result = try body()
                Issue.record("accepted: \(result)")
            } catch let e as ProtocolError {
                #expect(e.code == code, "\(e)")
                #expect(e.description.contains(text), "\(e)")
            } catch {
                Issue.record("unexpected error \(error)")
            }
        }

        @Test func duplicateRolesMissingDescriptorsAndDaemonFieldsAreRefused() throws {
            let d = try DaemonHarness(tag: "hostile")
            defer { d.cleanUp() }
            try d.start()
            let path = try Self.libsvmFile(d.dir)
            let spec = try Self.clientSpec(data: "libsvm:\(path)")
            let client = try ControlClient(path: d.socket)
            let a = open(path, O_RDONLY | O_CLOEXEC), b = open(path, O_RDONLY | O_CLOEXEC)
            defer { close(a); close(b) }

            // Point 1: the same role twice used to trap in Dictionary(uniqueKeysWithValues:) and kill the daemon.
            let twice = [FileRole(role: "train", name: path), FileRole(role: "train", name: path)]
            expectRefused({ try Self.submit(client, spec: spec, files: twice, fds: [a, b]) },
                          code: .invalidArgument, mentioning: "role \"train\" is given twice")
            // Point 2: no descriptors: the host would have opened the client's path itself.
            expectRefused({ try Self.submit(client, spec: spec, files: [], fds: []) },
                          code: .invalidArgument, mentioning: "no descriptor for the train file")
            // A role the data spec does not read.
            let extra = [FileRole(role: "train", name: path), FileRole(role: "test-labels", name: path)]
            expectRefused({ try Self.submit(client, spec: spec, files: extra, fds: [a, b]) },
                          code: .invalidArgument, mentioning: "role \"test-labels\" is not one the data spec reads")
            // Fields the daemon sets, and unknown ones, are refused by name (at every level).
            let one = [FileRole(role: "train", name: path)]
            for field in ["outputDir", "dataDescriptors", "dataNames", "id"] {
                guard case .object(var fields) = spec else { throw TestFailure("spec is not an object") }
                fields[field] = field == "outputDir" || field == "id" ? .string("/tmp/x") : .object(["train": .number(0)])
                expectRefused({ try Self.submit(client, spec: .object(fields), files: one, fds: [a]) },
                              code: .invalidArgument, mentioning: "field \"\(field)\" is set by the daemon")
            }
            // A rank of a job across machines (#15) only as `lapwing submit --hosts` sends one: with a
            // meeting, never a rendezvous file (a path the daemon's job would write or read), and
            // with a well-formed server and name.
            let machines: [(JSONValue, String)] = [
                (.object(["rank": .number(0), "size": .number(2), "rendezvous": .string("/etc/x")]), "a rendezvous file is for lapwing run"),
                (.object(["rank": .number(0), "size": .number(2)]), "a daemon's job across machines needs \"meeting\""),
                (.object(["rank": .number(1), "size": .number(2), "meeting": .object(["server": .string("x;tcp://1.2.3.4:5 $(reboot)"), "name": .string("n")])]),
                 "the ompi-server URI"),
                (.object(["rank": .number(1), "size": .number(2), "meeting": .object([:])]), "the ompi-server URI \"\" is missing"),
                (.object(["rank": .number(3), "size": .number(2), "meeting": .object([:])]), "machine rank 3 of 2"),

            ]
            for (machine, why) in machines {
                guard case .object(var fields) = spec else { throw TestFailure("spec is not an object") }
                fields["machine"] = machine
                expectRefused({ try Self.submit(client, spec: .object(fields), files: one, fds: [a]) },
                              code: .invalidArgument, mentioning: why)
            }
            guard case .object(var withHosts) = spec else { throw TestFailure("spec is not an object") }
            withHosts["machine"] = .object(["rank": .number(0), "size": .number(2), "meeting": .object([:]), "hosts": .string("a,b")])
            expectRefused({ try Self.submit(client, spec: .object(withHosts), files: one, fds: [a]) },
                          code: .unknownField, mentioning: "args.spec.machine: unknown field \"hosts\"")
            guard case .object(var fields) = spec, case .object(var sgd)? = fields["sgd"] else {
                throw TestFailure("spec has no sgd object")
            }
            sgd["momentom"] = .number(0.5)
            fields["sgd"] = .object(sgd)
            expectRefused({ try Self.submit(client, spec: .object(fields), files: one, fds: [a]) },
                          code: .unknownField, mentioning: "args.spec.sgd: unknown field \"momentom\"")

            // The daemon is alive and serves the next client; a correct submit goes through and trains.
            let next = try ControlClient(path: d.socket)
            let accepted = try Self.submit(next, spec: spec, files: one, fds: [a])
            let id = try #require(accepted["id"]?.stringValue)
            let watch = try d.cli(["watch", id, "--json"])
            #expect(watch.status == 0, "watch: \(watch.stdout) \(watch.stderr)")
            // Nothing of the refused submits was kept: one job directory, the accepted one.
            let dirs = try FileManager.default.contentsOfDirectory(atPath: d.stateDirectory + "/jobs")
            #expect(dirs == [id], "\(dirs)")
        }

        @Test func concurrentPauseAndResumeKeepTheRecordAndTheArenaInStep() throws {
            let d = try DaemonHarness(tag: "pause")
            defer { d.cleanUp() }
            try d.start()
            let id = try d.submit(["--model", "mlp:784-64-10", "--workers", "1", "--epochs", "500"]).id
            // Training (its arena complete, its workers stepping) before the calls start.
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline, (try? decode(JobRecord.self, d.cli(["status", id, "--json"]).stdout))?.progress?.samples ?? 0 == 0 {
                usleep(50_000)
            }
            #expect(FileManager.default.fileExists(atPath: "/dev/shm/lapwing.\(id)"))

            // 100 calls from 10 threads, each its own connection: pause and resume in turn.
            let failures = Mutex<[String]>([])
            let socket = d.socket
            DispatchQueue.concurrentPerform(iterations: 10) { t in
                guard let client = try? ControlClient(path: socket) else {
                    failures.withLock { $0.append("thread \(t): cannot connect") }
                    return
                }
                for k in 0..<10 {
                    do {
                        _ = try client.call((t + k) % 2 == 0 ? .pause : .resume, args: JobRef(job: id))
                    } catch let e as ProtocolError where e.code == .busy || e.code == .conflict {
                        continue
                    } catch {
                        failures.withLock { $0.append("thread \(t) call \(k): \(error)") }
                    }
                }
            }
            let failed = failures.withLock { $0 }
            #expect(failed.isEmpty, "\(failed)")
            let status = try decode(JobRecord.self, d.cli(["status", id, "--json"]).stdout)
            let onDisk = try JSONDecoder().decode(
                JobRecord.self, from: Data(contentsOf: URL(fileURLWithPath: d.stateDirectory + "/jobs/\(id)/job.json")))
            #expect(onDisk.state == status.state && onDisk.reason == status.reason, "disk \(onDisk.state), daemon \(status.state)")
            #expect(status.state == .paused || status.state == .running)
            // No temp file is left beside the record.
            let files = try FileManager.default.contentsOfDirectory(atPath: d.stateDirectory + "/jobs/\(id)")
            #expect(!files.contains { $0.contains(".tmp.") }, "\(files)")
            _ = try d.cli(["cancel", id])
            _ = try d.cli(["watch", id])
        }

        /// A full state directory: the failed save is reported to the caller and shown by status,
        /// the change is kept and saved once there is room again, and a submit that cannot be
        /// saved leaves nothing behind. The state directory is a small tmpfs of the test's own.
        @Test func aFullStateDirectoryIsReportedKeptAndRetried() throws {
            let d = try DaemonHarness(tag: "full")
            try FileManager.default.createDirectory(atPath: d.stateHome, withIntermediateDirectories: true)
            let mounted = try runProgram("/bin/mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", d.stateHome], timeout: 30)
            try #require(mounted.status == 0, "mount a tmpfs (needs root): \(mounted.stderr)")
            defer {
                d.stop()
                _ = try? runProgram("/bin/umount", ["-l", d.stateHome], timeout: 30)
                d.cleanUp()
            }
            try d.start()
            let id = try d.submit(["--model", "mlp:784-64-10", "--workers", "1", "--epochs", "500", "--eval-every", "0"]).id
            // Training (its arena complete, its workers stepping) before the disk fills.
            var deadline = Date().addingTimeInterval(60)
            while Date() < deadline, (try? decode(JobRecord.self, d.cli(["status", id, "--json"]).stdout))?.progress?.samples ?? 0 == 0 {
                usleep(50_000)
            }

            // Fill the state directory to the last byte.
            let filler = d.stateHome + "/filler"
            let fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            try #require(fd >= 0)
            let chunk = [UInt8](repeating: 7, count: 4096)
            while chunk.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
            while chunk.withUnsafeBytes({ write(fd, $0.baseAddress, 1) }) > 0 {}
            close(fd)

            let pause = try d.cli(["pause", id])
            #expect(pause.status == 1, "pause on a full disk exited \(pause.status): \(pause.stderr)")
            #expect(pause.stderr.contains("could not be saved"), "\(pause.stderr)")
            let shown = try decode(JobRecord.self, d.cli(["status", id, "--json"]).stdout)
            #expect(shown.state == .paused)
            #expect(shown.saveError?.isEmpty == false, "status shows no saveError")

            let jobsBefore = try FileManager.default.contentsOfDirectory(atPath: d.stateDirectory + "/jobs")
            let refused = try d.cli(["submit", "--data", fashionMNIST, "--model", "softmax", "--epochs", "0.1"])
            #expect(refused.status == 1, "submit on a full disk exited \(refused.status): \(refused.stderr)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: d.stateDirectory + "/jobs") == jobsBefore)

            // Room again: the daemon saves the record it kept.
            unlink(filler)
            deadline = Date().addingTimeInterval(30)
            var onDisk: JobRecord?
            while Date() < deadline {
                onDisk = try? JSONDecoder().decode(
                    JobRecord.self, from: Data(contentsOf: URL(fileURLWithPath: d.stateDirectory + "/jobs/\(id)/job.json")))
                if onDisk?.state == .paused { break }
                usleep(50_000)
            }
            #expect(onDisk?.state == .paused, "record on disk: \(onDisk?.state.rawValue ?? "unreadable")")
            #expect(onDisk?.saveError == nil)
            #expect(try decode(JobRecord.self, d.cli(["status", id, "--json"]).stdout).saveError == nil)
            _ = try d.cli(["cancel", id])
            _ = try d.cli(["watch", id])
        }

        @Test func commandLinesAndExitStatuses() throws {
            let d = try DaemonHarness(tag: "cli")
            defer { d.cleanUp() }
            // lapwingd's command line goes through the parser: --socket needs a path.
            let lapwingd = try TestSupport.binary("lapwingd")
            let noPath = try runProgram(lapwingd, ["--socket"], timeout: 60)
            #expect(noPath.status == 2, "lapwingd --socket exited \(noPath.status): \(noPath.stderr)")
            #expect(noPath.stderr.contains("--socket"), "\(noPath.stderr)")
            let both = try runProgram(lapwingd, ["--user", "--system"], timeout: 60)
            #expect(both.status == 2, "\(both.stderr)")

            try d.start()
            // SIGHUP does not end the daemon: it keeps serving.
            let pid = try #require(d.daemon?.pid)
            // SIGHUP reads the configuration again (here there is none). Sent again until it is
            // logged: the signal watcher starts a moment after the socket listens (an earlier
            // SIGHUP is ignored, silently).
            let deadline = Date().addingTimeInterval(30)
            var lastSent = Date.distantPast
            while Date() < deadline && !(d.daemon?.stderr.contains("SIGHUP") ?? false) {
                if Date().timeIntervalSince(lastSent) > 0.5 {
                    kill(pid, SIGHUP)
                    lastSent = Date()
                }
                usleep(20_000)
            }
            #expect(d.daemon?.stderr.contains("SIGHUP: configuration at the defaults (no file at") == true, "\(d.daemon?.stderr ?? "")")
            #expect(kill(pid, 0) == 0, "lapwingd died of SIGHUP")
            #expect(try d.cli(["version"]).stdout.contains("lapwingd"))

            // submit names its jobs itself; --replicas alone is fine (workers default to at least one per replica).
            let withID = try d.cli(["submit", "--data", fashionMNIST, "--model", "softmax", "--job-id", "mine"])
            #expect(withID.status == 2 && withID.stderr.contains("--job-id"), "\(withID.status) \(withID.stderr)")
            let replicas = try d.submit(["--model", "softmax", "--replicas", "2", "--epochs", "0.05"])
            #expect(replicas.spec.workers >= 2, "workers \(replicas.spec.workers)")
            _ = try d.cli(["watch", replicas.id])

            // 5 means "no such job" and nothing else.
            #expect(try d.cli(["status", "j999-none"]).status == 5)
            let missingData = try d.cli(["submit", "--data", "idx:/nonexistent-dir", "--model", "softmax"])
            #expect(missingData.status == 1, "missing data dir exited \(missingData.status): \(missingData.stderr)")
            let intoMissing = try d.cli(["export", replicas.id, "-o", d.dir + "/no/such/dir/model.safetensors"])
            #expect(intoMissing.status == 1, "export into a missing dir exited \(intoMissing.status): \(intoMissing.stderr)")
        }

        @Test func aUserWhoMayNotUseTheSocketIsToldSo() throws {
            let d = try DaemonHarness(tag: "perm")
            defer { d.cleanUp() }
            try d.start(arguments: ["--user", "--socket-mode", "0600"])
            let r = try d.cli(["list"], asNobody: true)
            #expect(r.status == 4, "exited \(r.status): \(r.stderr)")
            #expect(r.stderr.contains("permission denied"), "\(r.stderr)")
        }
    }
}

