import Foundation
import LapwingJob
import LapwingTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension JobTests.MachineLevelTests {
    /// Two ranks started without mpirun (`--mpi-rendezvous`): rank 0's host starts an
    /// ompi-server and publishes it in the file, the two singletons form their communicator
    /// there, and the job runs as under mpirun: lap-sgd's background rounds of the model's size,
    /// every row trained once per epoch. At the end the file and the server are gone.
    @Test(JobTests.MachineLevelTests.needsMPI)
    func ranksWithoutALauncherMeetThroughARendezvousFile() throws {
        let dir = try TestSupport.temporaryDirectory("mpi-rv")
        defer { TestSupport.removeTemporaryDirectory(dir) }
        let lapwing = try TestSupport.binary("lapwing")
        let id = TestSupport.jobID("mpirv")
        let file = dir + "/rendezvous"
        let job = [
            "run", "--mpi", "--json", "--mpi-rendezvous", file, "--mpi-ranks", "2", "--job-id", id, "--output-dir", dir + "/out",
            "--workers", "1",
        ] + Self.common
        let rank1 = try SpawnedProcess(lapwing, job + ["--mpi-rank", "1"], outputIn: dir)
        defer { rank1.signalGroup(SIGKILL) }
        let rank0 = try SpawnedProcess(lapwing, job + ["--mpi-rank", "0"], outputIn: dir)
        defer { rank0.signalGroup(SIGKILL) }
        #expect(rank0.wait(timeout: 300) == 0, "rank 0: \(rank0.stderr)")
        #expect(rank1.wait(timeout: 60) == 0, "rank 1: \(rank1.stderr)")
        let line = try #require(rank0.stdout.split(separator: "\n").last(where: { $0.hasPrefix("{") }), "\(rank0.stderr)")
        let s = try JSONDecoder().decode(JobSummary.self, from: Data(line.utf8))
        #expect(s.outcome == "completed" && s.machines == 2 && s.machineRank == 0, "\(s.reason ?? "")")
        #expect(abs(s.epochs - 4) < 0.001, "\(s.epochs) epochs")
        let rounds = try #require(s.machineRounds)
        #expect(rounds > 0 && s.machineBytes == rounds * Self.modelBytes)
        #expect((s.testAccuracy ?? 0) >= 0.84, "\(s.testAccuracy ?? 0)")
        #expect(!FileManager.default.fileExists(atPath: file), "the rendezvous file is left")
        let log = try String(contentsOfFile: dir + "/out/host.log", encoding: .utf8)
        let server = try #require(log.firstMatch(of: #/rendezvous: ompi-server (\d+) at /#).map { pid_t($0.1)! }, "\(log)")
        #expect(kill(server, 0) != 0, "ompi-server \(server) still runs")
    }

    /// `lapwing submit --hosts` checks its hosts and options before it contacts any daemon.
    @Test func hostsOptionsAreChecked() throws {
        let dir = try TestSupport.temporaryDirectory("hosts-bad")
        defer { TestSupport.removeTemporaryDirectory(dir) }
        let lapwing = try TestSupport.binary("lapwing")
        let job = ["submit", "--data", fashionMNIST, "--model", "softmax"]
        try "[Job]\nepochs = 1\n".write(toFile: dir + "/job.conf", atomically: true, encoding: .utf8)
        for (args, message) in [
            (["--hosts", "a"], "--hosts a: give 2 to 65536 hosts, comma-separated"),
            (["--hosts", "a,b;x"], "--hosts a,b;x: \"b;x\" is not a host name or address"),
            (["--hosts", "a,-oProxyCommand=x"], "is not a host name or address"),
            (["--hosts", "a,b", "--config", dir + "/job.conf"], "--config with --hosts: give the job's options on the command line"),
            (["--hosts", "a,b", "--watch"], "--watch with --hosts: watch rank 0's job on its host"),
            (["--hosts", "a,b", "--machine-rank", "1"], "--machine-rank, --machine-ranks, --machine-server, --machine-name: not with --hosts"),
            (["--machine-rank", "1"], "--machine-rank, --machine-ranks, --machine-server, --machine-name, --mpi-timeout: only as lapwing submit --hosts runs them"),
        ] {
            let p = try SpawnedProcess(lapwing, job + args, outputIn: dir, environment: ["LAPWING_RSH": "/bin/false"])
            #expect(p.wait(timeout: 60) == 2, "\(args): \(p.stderr)")
            #expect(p.stderr.contains(message), "\(args): \(p.stderr)")
        }
    }

    /// The rendezvous options are refused where they do not fit, naming what is missing.
    @Test(JobTests.MachineLevelTests.needsMPI)
    func rendezvousOptionsAreChecked() throws {
        let dir = try TestSupport.temporaryDirectory("mpi-rv-bad")
        defer { TestSupport.removeTemporaryDirectory(dir) }
        let lapwing = try TestSupport.binary("lapwing")
        let base = ["run", "--data", fashionMNIST, "--model", "softmax", "--output-dir", dir + "/out"]
        for (args, message) in [
            (["--mpi", "--mpi-rendezvous", dir + "/rv"], "--mpi-rendezvous: give this rank's --mpi-rank R and the job's --mpi-ranks N too"),
            (["--mpi", "--mpi-rank", "1", "--mpi-ranks", "2"], "--mpi-rank and --mpi-ranks: only with --mpi-rendezvous"),
            (["--mpi-rendezvous", dir + "/rv", "--mpi-rank", "0", "--mpi-ranks", "2"], "--mpi-rendezvous, --mpi-rank, --mpi-ranks: only with --mpi"),
            (["--mpi", "--mpi-rendezvous", dir + "/rv", "--mpi-rank", "2", "--mpi-ranks", "2"], "machine rank 2 of 2: needs 0 <= rank < size"),
        ] {
            let p = try SpawnedProcess(lapwing, base + args, outputIn: dir)
            #expect(p.wait(timeout: 60) == 2, "\(args)")
            #expect(p.stderr.contains(message), "\(args): \(p.stderr)")
        }
    }
}
