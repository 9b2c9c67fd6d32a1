import Foundation
import LapwingEngine
import LapwingJob
import LapwingTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A job's processes and arena exist while it runs and are gone after a normal end, a Ctrl-C
/// and a kill -9 of its host.
extension JobTests {
@Suite struct JobLifecycleTests {
    struct Running {
        let cli: SpawnedProcess
        let id: String
        let dir: String
        var arena: String { "/dev/shm/lapwing.\(id)" }
    }

    /// Starts a long lap-sgd job and waits until its workers and averager run.
    func start(model: String = "mlp:784-256-10", epochs: String = "1000", waitForWorkers: Bool = true) throws -> Running {
        let dir = try TestSupport.temporaryDirectory("life")
        let id = TestSupport.jobID("life")
        let cli = try SpawnedProcess(
            TestSupport.binary("lapwing"),
            ["run", "--data", fashionMNIST, "--model", model, "--algorithm", "lap-sgd", "--workers", "2",
             "--replicas", "2", "--epochs", epochs, "--job-id", id, "--output-dir", dir + "/out"],
            outputIn: dir)
        let running = Running(cli: cli, id: id, dir: dir)
        if !waitForWorkers { return running }
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let names = descendants(of: cli.pid).compactMap(processName)
            if names.filter({ $0.hasPrefix("lw-worker") }).count == 2 && names.contains("lw-averager") {
                return running
            }
            if cli.wait(timeout: 0.05) != nil { break }
        }
        throw TestFailure("the job did not start: \(cli.stderr)")
    }

    func expectGone(_ r: Running, _ pids: [pid_t]) {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline && (pids.contains { kill($0, 0) == 0 } || FileManager.default.fileExists(atPath: r.arena)) {
            usleep(20_000)
        }
        #expect(!FileManager.default.fileExists(atPath: r.arena), "arena \(r.arena) left behind")
        for pid in pids { #expect(kill(pid, 0) != 0, "process \(pid) left behind") }
        TestSupport.removeTemporaryDirectory(r.dir)
    }

    @Test func whileRunningArenaAndPinnedWorkersExist() throws {
        let r = try start()
        let pids = descendants(of: r.cli.pid)
        #expect(FileManager.default.fileExists(atPath: r.arena))
        // The daemon's admission estimate is the arena's real size.
        var st = stat()
        #expect(stat(r.arena, &st) == 0)
        let spec = JobSpec(data: fashionMNIST, model: "mlp:784-256-10", algorithm: AlgorithmConfig(name: "lap-sgd"), workers: 2, replicas: 2, id: r.id)
        #expect(spec.arenaBytes(numaNodes: 1) == Int(st.st_size))
        #expect(JobSpec(data: fashionMNIST, model: "softmax", algorithm: AlgorithmConfig(name: "lap-sgd"), workers: 2, id: r.id).arenaBytes(numaNodes: 1) == nil)
        let workers = pids.filter { processName($0)?.hasPrefix("lw-worker") == true }
        #expect(workers.count == 2)
        for w in workers {
            let cpus = allowedCPUs(w) ?? ""
            #expect(!cpus.contains(",") && !cpus.contains("-") && !cpus.isEmpty, "worker \(w) may run on \(cpus)")
        }
        #expect(pids.contains { processName($0) == "lw-averager" })
        r.cli.signalGroup(SIGINT)
        #expect(r.cli.wait(timeout: 30) == 130)
        expectGone(r, pids)
    }

    @Test func ctrlCStopsCleanlyAndKeepsTheModel() throws {
        let r = try start()
        let pids = descendants(of: r.cli.pid)
        r.cli.signalGroup(SIGINT)
        #expect(r.cli.wait(timeout: 30) == 130, "stderr: \(r.cli.stderr)")
        #expect(r.cli.stdout.contains("interrupted"))
        #expect(FileManager.default.fileExists(atPath: r.dir + "/out/model.safetensors"))
        expectGone(r, pids)
    }

    @Test func killingTheHostLeavesNothing() throws {
        let r = try start()
        let pids = descendants(of: r.cli.pid)
        guard let host = pids.first(where: { processName($0) == "lw-host" }) else {
            Issue.record("no lw-host among \(pids.map { processName($0) ?? "?" })")
            return
        }
        kill(host, SIGKILL)
        #expect(r.cli.wait(timeout: 30) == 1)
        #expect(r.cli.stderr.contains("killed by signal 9"))
        expectGone(r, pids)
    }

    @Test func aNormalEndLeavesNothing() throws {
        let r = try start(model: "softmax", epochs: "3", waitForWorkers: false)
        // Note every process of the job while it runs, then check they are all gone.
        var seen = Set<pid_t>()
        var sawArena = false
        while r.cli.wait(timeout: 0.01) == nil {
            seen.formUnion(descendants(of: r.cli.pid))
            sawArena = sawArena || FileManager.default.fileExists(atPath: r.arena)
        }
        #expect(r.cli.status == 0, "stderr: \(r.cli.stderr)")
        #expect(sawArena)
        #expect(seen.count >= 4, "saw \(seen.count) processes of the job")
        expectGone(r, Array(seen))
    }
}
}
