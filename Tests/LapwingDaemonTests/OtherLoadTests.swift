import Foundation
import LapwingJob
import LapwingTestSupport
import LapwingTopology
import Testing

@testable import LapwingDaemon

#if canImport(Glibc)
import Glibc
#endif

/// The arithmetic of the other processes' load ([Scheduling] CountOtherLoad): busy time less
/// Lapwing's own, smoothed; intervals in which one of Lapwing's sources vanished are skipped.
@Suite struct OtherLoadArithmeticTests {
    @Test func busyTimeLessLapwingsOwnIsSmoothed() {
        var load = OtherLoad()
        #expect(load.cores == nil && load.busyCores(of: 2) == nil)
        load.add(.init(time: 0, busy: 100, own: ["job a": 10]))
        #expect(load.cores == nil)
        // 2 s: the machine busy for 3.2 CPU-seconds, the job for 1.2 of them: 1 core of others.
        load.add(.init(time: 2, busy: 103.2, own: ["job a": 11.2]))
        #expect(abs(load.cores! - 1) < 1e-9 && load.busyCores(of: 2) == 1)
        // A new job counts whole; the others' load halves: the estimate moves toward it.
        load.add(.init(time: 3, busy: 105.2, own: ["job a": 11.7, "job b": 1]))
        let moved = 1 + (1 - exp(-1 / OtherLoad.timeConstant)) * (0.5 - 1)
        #expect(abs(load.cores! - moved) < 1e-9)
        // Job b ended within the interval: skipped, not taken for others' load.
        load.add(.init(time: 4, busy: 107.2, own: ["job a": 12.2]))
        #expect(abs(load.cores! - moved) < 1e-9)
        // Idle, the estimate decays below half a core within a few time constants.
        var t = 4.0
        var busy = 107.2
        while load.busyCores(of: 2)! > 0 && t < 60 {
            t += 1
            busy += 0.01
            load.add(.init(time: t, busy: busy, own: ["job a": 12.2]))
        }
        #expect(t < 4 + 3 * OtherLoad.timeConstant, "still \(load.cores!) cores after \(t - 4) s")
        #expect(load.busyCores(of: 2) == 0)
        load.reset()
        #expect(load.cores == nil)
    }

    @Test func theKernelsCountersRead() throws {
        let all = Set(0..<Int(sysconf(Int32(_SC_NPROCESSORS_CONF))))
        // cpu0's counters, read first, are part of all of them, read after.
        let first = try #require(OtherLoad.busySeconds(of: [0]))
        let busy = try #require(OtherLoad.busySeconds(of: all))
        #expect(busy > 0 && first > 0 && first <= busy)
        #expect(OtherLoad.busySeconds(of: [100_000]) == nil)
        let me = try #require(ProcessStat.read(getpid()))
        #expect(me.state != "Z" && me.startTime > 0 && me.cpuSeconds >= 0)
        // A child of ours counts under us as its root; init does not.
        let dir = try TestSupport.temporaryDirectory("load-tree")
        defer { TestSupport.removeTemporaryDirectory(dir) }
        let child = try SpawnedProcess("/bin/sleep", ["30"], outputIn: dir)
        defer {
            kill(child.pid, SIGKILL)
            _ = child.wait(timeout: 30)
        }
        let mine = OtherLoad.processSeconds(under: [getpid()])
        #expect(mine.keys.contains { $0.hasPrefix("\(child.pid):") } && !mine.keys.contains { $0.hasPrefix("1:") })
    }
}

/// CountOtherLoad on a real daemon: real processes that burn every core make a job wait, with a
/// reason that names the load; once they are killed the job starts. (A 1-core job, so that it
/// starts once the other load falls below 1.5 cores: other tests may run beside this one.)
extension DaemonTests {
@Suite struct OtherLoadTests {
    @Test func burningProcessesHoldAJobUntilTheyAreKilled() throws {
        let d = try DaemonHarness(tag: "load")
        defer { d.cleanUp() }
        try d.writeConfig("[Scheduling]\nCountOtherLoad = yes\n")
        let cores = QuickCounts.allowedCores() ?? 2
        var burners = try (0..<cores).map { _ in try SpawnedProcess("/bin/sh", ["-c", "while :; do :; done"], outputIn: d.dir) }
        func stopBurners() {
            for b in burners { kill(b.pid, SIGKILL) }
            for b in burners { _ = b.wait(timeout: 30) }
            burners = []
        }
        defer { stopBurners() }
        try d.start()
        let job = try d.submit(["--model", "softmax", "--workers", "1", "--epochs", "0.2", "--eval-every", "0"]).id
        func record() throws -> JobRecord { try decode(JobRecord.self, d.cli(["status", job, "--json"]).stdout) }
        // Polled twice a second: the polls' own processes are load too.
        let held = try eventually(timeout: 120, every: 0.5) { try record().reason?.contains("other processes keep") == true }
        let reason = try record().reason ?? ""
        #expect(held, "\(reason)")
        #expect(try record().state == .queued)
        #expect(
            reason.hasPrefix("waiting for 1 free core (0 free; other processes keep \(cores) cores busy, CountOtherLoad in [Scheduling])"),
            "\(reason)")

        stopBurners()
        // Other tests may keep the machine busy a while: generous, and no fixed wait.
        let started = try eventually(timeout: 300, every: 0.5) { try record().started != nil }
        #expect(started, "\((try? record())?.reason ?? "")")
        if started {
            _ = try d.cli(["watch", job], timeout: 300)
            #expect(try record().state == .succeeded)
        }
    }
}
}
