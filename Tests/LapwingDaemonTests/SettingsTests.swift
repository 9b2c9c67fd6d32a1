import Foundation
import LapwingDaemon
import LapwingJob
import LapwingTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The configuration file (issue #14): its reading, with file:line errors.
@Suite struct SettingsFileTests {
    @Test func everySectionReads() throws {
        let s = try DaemonSettings.parse(
            """
            # limits
            [Limits]
            CoresPerUser = 4   # every user
            QueuedJobsPerUser = 10
            ArenaBytesPerUser = 2G
            [User:root]
            Cores = 16
            [Group:nogroup]
            Cores = 1
            QueuedJobs = 3
            MaxPriority = 20
            [Scheduling]
            FairShare = no
            FairShareWindow = 3600
            CountOtherLoad = yes
            [Retention]
            KeepFinishedJobs = 500
            KeepFinishedDays = 7
            """, name: "lapwingd.conf")
        #expect(s.limits == DaemonSettings.Limits(cores: 4, queuedJobs: 10, arenaBytes: 2 << 30, maxPriority: 0))
        #expect(s.users["root"]?.cores == 16 && s.groups["nogroup"]?.queuedJobs == 3)
        #expect(!s.fairShare && s.fairShareWindow == 3600 && s.keepFinishedJobs == 500 && s.keepFinishedDays == 7)
        #expect(s.countOtherLoad && DaemonSettings().countOtherLoad == false)
        #expect(s.limits(of: 65534).limits.maxPriority == 20 && s.limits(of: 65534).from[3] == "[Group:nogroup]")
        #expect(s.limits(of: 0).limits.maxPriority == 0 && s.limits(of: 0).from[3] == "[Limits]")
        let root = s.limits(of: 0)
        #expect(root.limits.cores == 16 && root.from[0] == "[User:root]")
        #expect(root.limits.queuedJobs == 10 && root.from[1] == "[Limits]")
        let nobody = s.limits(of: 65534)
        #expect(nobody.limits.cores == 1 && nobody.from[0] == "[Group:nogroup]" && nobody.limits.queuedJobs == 3)
    }

    @Test func aBadLineIsNamedWithItsFileAndLine() {
        for (text, wanted) in [
            ("[Limits]\nCoresPerUser = many\n", "lapwingd.conf:2: CoresPerUser = many: needs a whole number"),
            ("[Limits]\n\nCores = 2\n", "lapwingd.conf:3: unknown key Cores in [Limits]"),
            ("CoresPerUser = 2\n", "lapwingd.conf:1: CoresPerUser is outside any section"),
            ("[Limit]\n", "lapwingd.conf:1: unknown section [Limit]"),
            ("[User:]\n", "lapwingd.conf:1: [User:] needs a name"),
            ("[Limits]\nArenaBytesPerUser = 3X\n", "lapwingd.conf:2: ArenaBytesPerUser = 3X: needs a size"),
            ("[Scheduling]\nFairShare = maybe\n", "lapwingd.conf:2: FairShare = maybe: needs yes or no"),
            ("[Limits]\nMaxPriority = 101\n", "lapwingd.conf:2: MaxPriority = 101: needs a whole number from -100 to 100"),
            ("[Scheduling]\nCountOtherLoad = some\n", "lapwingd.conf:2: CountOtherLoad = some: needs yes or no"),
            ("[Limits]\njust words\n", "lapwingd.conf:2: expected Key = value"),
        ] {
            do {
                _ = try DaemonSettings.parse(text, name: "lapwingd.conf")
                Issue.record("accepted: \(text)")
            } catch {
                #expect(error.message.hasPrefix(wanted), "\(error.message)")
            }
        }
    }
}

/// Limits and fair share between two users (root and nobody, through setpriv) on the daemon,
/// and `systemctl reload`'s SIGHUP.
extension DaemonTests {
@Suite struct UserLimitsTests {
    func record(_ d: DaemonHarness, _ id: String) throws -> JobRecord {
        try decode(JobRecord.self, d.cli(["status", id, "--json"]).stdout)
    }

    func submit(_ d: DaemonHarness, workers: Int, asNobody: Bool = false, priority: Int? = nil) throws -> (
        status: Int32, id: String?, stderr: String
    ) {
        let r = try d.cli(
            ["submit", "--json", "--data", fashionMNIST, "--model", "mlp:784-64-10", "--algorithm", "hogwild",
             "--workers", "\(workers)", "--epochs", "500", "--eval-every", "0"] + (priority.map { ["--priority", "\($0)"] } ?? []),
            asNobody: asNobody)
        return (r.status, r.status == 0 ? try decode(JobRecord.self, r.stdout).id : nil, r.stderr)
    }

    func writeConfig(_ d: DaemonHarness, _ text: String) throws { try d.writeConfig(text) }

    @Test func aPerUserCapHoldsTheThirdJobAndAReloadLiftsIt() throws {
        let d = try DaemonHarness(tag: "caps")
        defer { d.cleanUp() }
        try writeConfig(d, "[Limits]\nCoresPerUser = 1\n")
        try d.start()
        let a = try #require(submit(d, workers: 1).id)
        let held = try #require(submit(d, workers: 1).id)
        let b = try #require(submit(d, workers: 1, asNobody: true).id)
        #expect(try eventually(timeout: 60) { try record(d, a).state == .running && record(d, b).state == .running })
        let reason = try record(d, held).reason ?? ""
        #expect(try record(d, held).state == .queued)
        #expect(reason.contains("held by a cap") && reason.contains("CoresPerUser in [Limits]") && reason.contains("root"), "\(reason)")
        let hosts = try (record(d, a).hostPID, record(d, b).hostPID)

        // A bad file is refused with its line; the previous limits stay.
        try writeConfig(d, "[Limits]\nCoresPerUser = lots\n")
        kill(d.daemon!.pid, SIGHUP)
        #expect(eventually(timeout: 30) { d.daemon!.stderr.contains("lapwingd.conf:2: CoresPerUser = lots") }, "\(d.daemon!.stderr)")
        #expect(try record(d, held).reason == reason)

        // Raised, the cap no longer holds it: it waits for a core like any job; nothing running moved.
        try writeConfig(d, "[Limits]\nCoresPerUser = 2\n")
        kill(d.daemon!.pid, SIGHUP)
        let lifted = try eventually(timeout: 30) { try record(d, held).reason?.hasPrefix("waiting for 1 free core") == true }
        #expect(lifted, "\((try? record(d, held))?.reason ?? "")")
        #expect(try (record(d, a).hostPID, record(d, b).hostPID) == hosts)
        #expect(try record(d, a).state == .running && record(d, b).state == .running)
        for id in [a, held, b] { _ = try d.cli(["cancel", id]) }
    }

    @Test func fairShareStartsTheLessServedUsersJobFirstAndTheQueueHasACap() throws {
        let d = try DaemonHarness(tag: "fair")
        defer { d.cleanUp() }
        try writeConfig(d, "[Limits]\nQueuedJobsPerUser = 1\n")
        try d.start()
        let first = try #require(submit(d, workers: 2).id)
        #expect(try eventually(timeout: 60) { try record(d, first).state == .running })
        let rootsNext = try #require(submit(d, workers: 2).id)
        let refused = try submit(d, workers: 2)
        #expect(refused.status != 0 && refused.stderr.contains("root has 1 queued job, the most that QueuedJobsPerUser in [Limits] allows (1)"),
                "\(refused.stderr)")
        let nobodys = try #require(submit(d, workers: 2, asNobody: true).id)
        // root has been served (its first job), nobody not at all: nobody's job goes next.
        #expect(try d.cli(["cancel", first]).status == 0)
        #expect(try eventually(timeout: 60) { try record(d, nobodys).state == .running })
        #expect(try record(d, rootsNext).state == .queued)
        for id in [nobodys, rootsNext] { _ = try d.cli(["cancel", id]) }
    }

    @Test func priorityOrdersAUsersOwnQueueWithinItsLimitAfterFairShare() throws {
        let d = try DaemonHarness(tag: "priority")
        defer { d.cleanUp() }
        try writeConfig(d, "[Limits]\nMaxPriority = 0\n[User:root]\nMaxPriority = 10\n")
        try d.start()
        let conf = d.dir + "/config/lapwing/lapwingd.conf"
        // Above the limit: refused (usage, 2), naming the limit and where it is set.
        let high = try submit(d, workers: 2, asNobody: true, priority: 1)
        #expect(high.status == 2 && high.stderr.contains("priority 1 is above the highest nobody may give a job, 0 (MaxPriority in [Limits] of \(conf))"),
                "\(high.status) \(high.stderr)")
        let tooHigh = try submit(d, workers: 2, priority: 11)
        #expect(tooHigh.status == 2 && tooHigh.stderr.contains("MaxPriority in [User:root] of \(conf)"), "\(tooHigh.stderr)")
        let outOfRange = try submit(d, workers: 2, priority: 101)
        #expect(outOfRange.status == 2 && outOfRange.stderr.contains("--priority 101"), "\(outOfRange.stderr)")

        let first = try #require(submit(d, workers: 2).id)
        #expect(try eventually(timeout: 60) { try record(d, first).state == .running })
        let rootsOld = try #require(submit(d, workers: 2).id)
        let rootsUrgent = try #require(submit(d, workers: 2, priority: 5).id)
        // Anyone may lower their own job's priority.
        let nobodys = try #require(submit(d, workers: 2, asNobody: true, priority: -5).id)
        #expect(try record(d, rootsUrgent).priority == 5 && record(d, nobodys).priority == -5)
        // list's fifth column (JOB NAME STATE USER PRIO ...; these jobs have no name).
        let rows = try d.cli(["list"]).stdout.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        let prio = Dictionary(rows.map { ($0[0], $0.count > 4 ? $0[4] : "") }, uniquingKeysWith: { a, _ in a })
        #expect(prio["JOB"] == "PRIO" && prio[rootsUrgent] == "5" && prio[nobodys] == "-5" && prio[rootsOld] == "0", "\(rows)")
        #expect(try d.cli(["status", rootsUrgent]).stdout.contains("priority 5"))

        // Fair share comes first: nobody, served least, goes next despite its lower priority.
        #expect(try d.cli(["cancel", first]).status == 0)
        #expect(try eventually(timeout: 60) { try record(d, nobodys).state == .running })
        #expect(try record(d, rootsOld).state == .queued && record(d, rootsUrgent).state == .queued)
        // Then, within root's own queue, the higher priority before the older job.
        #expect(try d.cli(["cancel", nobodys]).status == 0)
        #expect(try eventually(timeout: 60) { try record(d, rootsUrgent).state == .running })
        #expect(try record(d, rootsOld).state == .queued)
        for id in [rootsUrgent, rootsOld] { _ = try d.cli(["cancel", id]) }
    }
}
}

/// `lapwing rm` and the retention policy: finished jobs go, running and queued ones never.
extension DaemonTests {
@Suite struct RetentionTests {
    @Test func retentionRemovesOldFinishedJobsAndNothingElse() throws {
        let d = try DaemonHarness(tag: "retention")
        defer { d.cleanUp() }
        try d.writeConfig("[Retention]\nKeepFinishedJobs = 2\n")
        try d.start()
        let short = ["--model", "softmax", "--workers", "1", "--epochs", "0.1", "--eval-every", "0"]
        // A long job runs throughout (it is not finished, so it is never removed).
        let running = try d.submit(["--model", "mlp:784-64-10", "--workers", "1", "--epochs", "500", "--eval-every", "0"]).id
        var done: [String] = []
        for _ in 0..<4 {
            let id = try d.submit(short).id
            _ = try d.cli(["watch", id], timeout: 300)
            done.append(id)
        }
        let listed = try decode([JobRecord].self, d.cli(["list", "--json"]).stdout).map(\.id)
        #expect(listed.contains(running))
        #expect(!listed.contains(done[0]) && !listed.contains(done[1]), "\(listed)")
        #expect(listed.contains(done[2]) && listed.contains(done[3]), "\(listed)")
        #expect(!FileManager.default.fileExists(atPath: d.stateDirectory + "/jobs/\(done[0])"))
        #expect(d.daemon!.stderr.contains("job \(done[0]) removed by the retention policy: only the newest 2 finished jobs are kept"))

        // rm: a finished job goes with its files; a running one is refused; an unknown one named.
        let rm = try d.cli(["rm", done[3]])
        #expect(rm.status == 0 && rm.stdout.contains("removed"), "\(rm.stderr)")
        #expect(!FileManager.default.fileExists(atPath: d.stateDirectory + "/jobs/\(done[3])"))
        let busy = try d.cli(["rm", running])
        #expect(busy.status != 0 && busy.stderr.contains("only a finished job is removed"), "\(busy.stderr)")
        let other = try d.cli(["rm", done[2]], asNobody: true)
        #expect(other.status != 0 && other.stderr.contains("belongs to uid 0"), "\(other.stderr)")
        _ = try d.cli(["cancel", running])

        // A restarted daemon knows only what is left.
        d.stop()
        try d.start()
        let after = try decode([JobRecord].self, d.cli(["list", "--json"]).stdout).map(\.id)
        #expect(Set(after) == Set([running, done[2]]), "\(after)")
    }
}
}

/// The configuration's documentation: every key in lapwingd(8) and the example file, and the
/// example file reads, commented and uncommented.
@Suite struct SettingsDocTests {
    static let keys = [
        "CoresPerUser", "QueuedJobsPerUser", "ArenaBytesPerUser", "Cores", "QueuedJobs", "ArenaBytes", "FairShare",
        "FairShareWindow", "KeepFinishedJobs", "KeepFinishedDays", "MaxPriority", "CountOtherLoad",
    ]

    @Test func everyKeyIsDocumentedAndTheExampleReads() throws {
        let man = try String(contentsOfFile: SystemdUnitTests.repo + "/docs/lapwingd.8", encoding: .utf8)
        let example = try String(contentsOfFile: SystemdUnitTests.repo + "/systemd/lapwingd.conf.example", encoding: .utf8)
        for key in Self.keys {
            #expect(man.contains(".B \(key)") || man.contains(".BR \(key)") || man.contains("\(key),"), "lapwingd.8 lacks \(key)")
            #expect(example.contains("#\(key) =") || example.contains("\(key) ="), "the example lacks \(key)")
        }
        for section in ["SIGNALS", "FILES", "ENVIRONMENT", "SEE ALSO"] { #expect(man.contains(".SH \(section)")) }
        _ = try DaemonSettings.parse(example, name: "lapwingd.conf.example")
        // Uncommented (keys and sections), it still reads and sets what it says.
        let live = example.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            line.hasPrefix("#") && (line.dropFirst().first?.isUppercase == true || line.dropFirst().hasPrefix("["))
                && (line.contains("=") || line.dropFirst().hasPrefix("[")) ? String(line.dropFirst()) : String(line)
        }.joined(separator: "\n")
        let s = try DaemonSettings.parse(live, name: "lapwingd.conf.example")
        #expect(s.limits.cores == 8 && s.users["alice"]?.cores == 16 && s.groups["students"]?.queuedJobs == 5)
        #expect(s.keepFinishedJobs == 1000 && s.keepFinishedDays == 30)
    }
}
