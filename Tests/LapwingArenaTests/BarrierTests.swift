import CLapwing
import Foundation
import LapwingArena
import LapwingCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Arena barriers and exchange vectors: layout")
struct BarrierLayoutTests {
    @Test("barriers sit on cache lines of their own after the replica table; exchange vectors after the replicas, 2 MiB apart")
    func layoutMath() throws {
        let l = try ArenaLayout.compute(
            jobID: "x", parameterCount: 1000, replicaNodes: [-1, -1], workers: 4, vectorsPerReplica: 2, barriers: 3,
            exchangeVectorsPerWorker: 2)
        #expect(l.layoutVersion == 2)
        #expect(l.barriersOffset == 256 + 6 * 64 + 2 * 64)
        // Its line, then a log of 6 (slots) uint32 rounded to a line.
        #expect(l.barrierStride == 128)
        #expect((0..<3).map { l.barrierOffset($0) % 64 } == [0, 0, 0])
        #expect(l.exchangeNodesOffset == l.barriersOffset + 3 * 128)
        #expect(l.dataOffset == 2 << 20)
        #expect(l.exchangeOffset == l.dataOffset + 2 * 2 * (2 << 20))
        #expect(l.exchangeOffset(1, ofWorker: 3) == l.exchangeOffset + 7 * (2 << 20))
        #expect(l.totalSize == l.dataOffset + (2 * 2 + 4 * 2) * (2 << 20))
        #expect(l.exchangeNodes == [-1, -1, -1, -1])

        // Today's callers (no barriers, no exchange vectors) get the same offsets as before.
        let plain = try ArenaLayout.compute(
            jobID: "x", parameterCount: 1, replicaNodes: [-1, -1], workers: 4, vectorsPerReplica: 3)
        #expect(plain.barrierCount == 0 && plain.exchangeVectorsPerWorker == 0)
        #expect(plain.totalSize == (2 << 20) + 2 * 3 * (2 << 20))

        // 4096 participants: a barrier's log holds one entry per slot (W + 2).
        let wide = try ArenaLayout.compute(
            jobID: "x", parameterCount: 1, replicaNodes: [-1], workers: 4094, vectorsPerReplica: 1, barriers: 2)
        #expect(wide.barrierStride == 64 + 4096 * 4)
    }

    @Test("barrier and exchange counts out of range, and a worker-to-replica map of the wrong shape, are invalid")
    func badShapes() throws {
        for (b, e) in [(-1, 0), (ArenaLayout.maxBarriers + 1, 0), (0, -1), (0, ArenaLayout.maxExchangeVectorsPerWorker + 1)] {
            let error = expectLapwingError(.invalidArgument) { () throws(LapwingError) in
                _ = try ArenaLayout.compute(
                    jobID: "x", parameterCount: 10, replicaNodes: [-1], workers: 2, vectorsPerReplica: 1, barriers: b,
                    exchangeVectorsPerWorker: e)
            }
            #expect(error?.message.contains(b != 0 ? "barrier count" : "exchange vectors") == true, "\(String(describing: error))")
        }
        let id = uniqueJobID("xmap")
        let e = expectLapwingError(.invalidArgument) { () throws(LapwingError) in
            _ = try Arena.create(
                jobID: id, parameterCount: 10, replicaNodes: [-1, -1], workers: 2, exchangeVectorsPerWorker: 1,
                workerReplicas: [0, 2])
        }
        #expect(e?.message.contains("worker replicas") == true)
        #expect(statFile(Arena.segmentPath(jobID: id)) == nil)
    }
}

@Suite("Arena barriers in one process")
struct BarrierTests {
    @Test("a new arena's barriers have every worker as participant; exchange vectors are aligned, zero and bound")
    func created() throws {
        try withJobID("bnew") { id in
            let arena = try Arena.create(
                jobID: id, parameterCount: 3000, replicaNodes: [0, -1], workers: 3, vectorsPerReplica: 1, barriers: 2,
                exchangeVectorsPerWorker: 2, workerReplicas: [0, 1, 0])
            #expect(arena.layout.exchangeNodes == [0, -1, 0])
            for i in 0..<2 {
                let b = arena.barrier(i)
                #expect(b.participants == 3 && b.quorum == 3 && b.round == 0 && b.completedRounds == 0)
                #expect(Int(bitPattern: b.address) % 64 == 0)
            }
            for w in 0..<3 {
                for k in 0..<2 {
                    let v = arena.exchangeVector(k, ofWorker: w)
                    #expect(v.count == 3000)
                    #expect(Int(bitPattern: v.baseAddress) % (2 << 20) == 0)
                    #expect(v.allSatisfy { $0 == 0 })
                }
            }
            arena.exchangeVector(1, ofWorker: 2)[5] = 4
            let attached = try Arena.attach(jobID: id)
            #expect(attached.layout == arena.layout)
            #expect(attached.exchangeVector(1, ofWorker: 2)[5] == 4)
            #expect(try arena.nodeOfPage(UnsafeRawPointer(arena.exchangeVector(1, ofWorker: 2).baseAddress!)) == 0)

            let report = try attached.report()
            #expect(report.barriers.map(\.quorum) == [3, 3])
            #expect(report.exchange.map(\.intendedNode) == [0, -1, 0])
            #expect(report.exchange[2].vectorChecksums == [0, 4])
            #expect(report.exchange[0].node == 0)
        }
    }

    @Test("one participant passes at once, and its whenComplete sees itself")
    func single() throws {
        try withJobID("b1") { id in
            let arena = try Arena.create(jobID: id, parameterCount: 1, replicaNodes: [-1], workers: 1, barriers: 1)
            let b = arena.barrier(0)
            var round = b.round
            for i in 0..<100 {
                var seen: [Int] = []
                let outcome = b.arriveAndWait(round: round, participant: 0) { seen = Array($0) }
                #expect(outcome == .counted(round: UInt32(i), ticket: 0, completed: true, next: UInt32(i + 1)))
                #expect(seen == [0])
                guard case .counted(_, _, _, let next) = outcome else { break }
                round = next
            }
            #expect(b.completedRounds == 100 && b.lateArrivals == 0)
            withExtendedLifetime(arena) {}  // the views point into its mapping
        }
    }

    @Test("4096 participants: arrivals counted in order, the last completes; first 4000 of 4096 drops 96")
    func wide() throws {
        try withJobID("bwide") { id in
            let arena = try Arena.create(jobID: id, parameterCount: 1, replicaNodes: [-1], workers: 4094, barriers: 1)
            let b = arena.barrier(0)
            b.configure(participants: 4096)
            #expect(b.capacity == 4096 && b.quorum == 4096)
            // Round 0 in order, round 1 in reverse: the log follows arrival, not index.
            for (round, order) in [(UInt32(0), Array(0..<4096)), (1, Array((0..<4096).reversed()))] {
                var logged: [Int] = []
                for (t, p) in order.enumerated() {
                    let a = b.arrive(round: round, participant: p) { logged = Array($0) }
                    #expect(a == .counted(round: round, ticket: t, completed: t == 4095))
                    if t < 4095 { #expect(b.round == round) }
                }
                let firstDifference = order.indices.first { $0 >= logged.count || logged[$0] != order[$0] }
                #expect(logged.count == order.count && firstDifference == nil, "log differs at \(String(describing: firstDifference)) of \(logged.count)")
                #expect(b.wait(forRoundAfter: round, spins: 0) == .passed(current: round + 1))
            }
            b.configure(participants: 4096, quorum: 4000)
            var counted = 0
            var late = 0
            for p in 0..<4096 {
                switch b.arrive(round: 2, participant: p) {
                case .counted(round: 2, ticket: p, let completed):
                    counted += 1
                    #expect(completed == (p == 3999))
                case .late(2): late += 1
                case let other: Issue.record("participant \(p): \(other)")
                }
            }
            #expect(counted == 4000 && late == 96)
            #expect(b.lateArrivals == 96 && b.completedRounds == 3 && b.round == 3)
            // A straggler of round 0 is late, and its wait ends at once with the round now open.
            #expect(b.arrive(round: 0, participant: 7) == .late(round: 0))
            #expect(b.arriveAndWait(round: 0, participant: 7, spins: 0) == .late(round: 0, next: 3))
            withExtendedLifetime(arena) {}  // the views point into its mapping
        }
    }

    @Test("group barriers (hier-avg): each completes with its own members, named in its log, independently of the other")
    func groups() throws {
        try withJobID("bgroup") { id in
            let arena = try Arena.create(jobID: id, parameterCount: 1, replicaNodes: [-1], workers: 4, barriers: 3)
            let (global, g0, g1) = (arena.barrier(0), arena.barrier(1), arena.barrier(2))
            g0.configure(participants: 2)
            g1.configure(participants: 2)
            var logs: [[Int]] = [[], []]
            #expect(g1.arrive(round: 0, participant: 3) { logs[1] = Array($0) } == .counted(round: 0, ticket: 0, completed: false))
            #expect(g0.arrive(round: 0, participant: 1) { logs[0] = Array($0) } == .counted(round: 0, ticket: 0, completed: false))
            #expect(g1.arrive(round: 0, participant: 2) { logs[1] = Array($0) } == .counted(round: 0, ticket: 1, completed: true))
            #expect(logs == [[], [3, 2]] && g1.round == 1 && g0.round == 0 && global.round == 0)
            #expect(g0.arrive(round: 0, participant: 0) { logs[0] = Array($0) } == .counted(round: 0, ticket: 1, completed: true))
            #expect(logs == [[1, 0], [3, 2]] && g0.round == 1)
            // The global barrier still waits for all four workers.
            for w in 0..<3 { #expect(global.arrive(round: 0, participant: w) == .counted(round: 0, ticket: w, completed: false)) }
            #expect(global.arrive(round: 0, participant: 3) == .counted(round: 0, ticket: 3, completed: true))
            withExtendedLifetime(arena) {}  // the views point into its mapping
        }
    }

    @Test("a stopping job: arrivals count nothing and waits end with .stopped")
    func stoppingInProcess() throws {
        try withJobID("bstop1") { id in
            let arena = try Arena.create(jobID: id, parameterCount: 1, replicaNodes: [-1], workers: 2, barriers: 1)
            let b = arena.barrier(0)
            #expect(b.arrive(round: 0, participant: 0) == .counted(round: 0, ticket: 0, completed: false))
            arena.setState(.stopping)
            #expect(b.wait(forRoundAfter: 0, spins: 10) == .stopped)
            #expect(b.arrive(round: 0, participant: 1) == .stopped)
            #expect(b.round == 0 && b.completedRounds == 0)
            withExtendedLifetime(arena) {}  // the views point into its mapping
        }
    }

    @Test("three threads, each with a mapping of its own, meet at the barrier for 2000 rounds (one only sleeps)")
    func threads() throws {
        try withJobID("bthr") { id in
            let arena = try Arena.create(
                jobID: id, parameterCount: 16, replicaNodes: [-1], workers: 3, barriers: 1, exchangeVectorsPerWorker: 2)
            let results = Results(3)
            let done = DispatchSemaphore(value: 0)
            for p in 0..<3 {
                // Threads of their own: a pool with fewer threads than participants would deadlock.
                Thread {
                    defer { done.signal() }
                    do {
                        let mapping = try Arena.attach(jobID: id)
                        // spins 0: every wait of participant 0 goes through FUTEX_WAIT.
                        results.set(p, try BarrierDrill(barrier: 0, participant: p, rounds: 2000, spins: p == 0 ? 0 : 64).run(in: mapping))
                    } catch {
                        results.set(p, nil)
                    }
                }.start()
            }
            for _ in 0..<3 { done.wait() }
            for p in 0..<3 {
                let r = try #require(results.get(p))
                #expect(r.counted == 2000 && r.late == 0 && r.mismatches == 0, "\(r)")
            }
            #expect(arena.barrier(0).completedRounds == 2000)
        }
    }
}

/// Optional results written by several threads.
private final class Results: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [BarrierDrill.Result?]
    init(_ n: Int) { values = Array(repeating: nil, count: n) }
    func set(_ i: Int, _ v: BarrierDrill.Result?) { lock.withLock { values[i] = v } }
    func get(_ i: Int) -> BarrierDrill.Result? { lock.withLock { values[i] } }
}

@Suite("Arena barriers across processes", .serialized)
struct BarrierProcessTests {
    @Test("4 processes, 2000 rounds: after every round each sees every other's contribution of that round")
    func plain() throws {
        try withJobID("bproc") { id in
            let rounds = 2000
            let arena = try Arena.create(
                jobID: id, parameterCount: rounds, replicaNodes: [-1], workers: 4, vectorsPerReplica: 1, barriers: 2,
                exchangeVectorsPerWorker: 2)
            arena.setState(.running)
            // Barrier 1, to show that barriers are independent instances.
            let results = try runDrill(id, barrier: 1, participants: 4, rounds: rounds)
            for r in results {
                #expect(r.mismatches == 0, "\(r.firstMismatch ?? "")")
                #expect(r.counted == rounds && r.late == 0 && !r.stopped, "\(r)")
            }
            #expect(results.map(\.completed).reduce(0, +) == rounds)
            #expect(arena.barrier(1).completedRounds == UInt64(rounds) && arena.barrier(1).round == UInt32(rounds))
            #expect(arena.barrier(0).completedRounds == 0)
            #expect(tally(arena, participants: 4, rounds: rounds).allSatisfy { $0 == 4 })

            // lapwing-numa arena shows the barriers and the exchange vectors, as text and JSON.
            let text = try runLapwingNuma(["arena", id])
            let shown = String(decoding: text.stdout, as: UTF8.self)
            #expect(text.status == 0 && shown.contains("1\tquorum 4 of 4\tround \(rounds)\tcompleted \(rounds)\tlate 0"), "\(shown)")
            #expect(shown.contains("exchange vectors:\n  worker 0"), "\(shown)")
            let json = try runLapwingNuma(["arena", id, "--json"])
            let report = try JSONDecoder().decode(ArenaReport.self, from: json.stdout)
            #expect(report.barriers.map(\.completedRounds) == [0, UInt64(rounds)])
            #expect(report.exchange.map(\.worker) == [0, 1, 2, 3])
        }
    }

    @Test("first 3 of 4, 2000 rounds: exactly 3 arrivals count in every round, the rest are late")
    func firstNofM() throws {
        try withJobID("bquorum") { id in
            let rounds = 2000
            let arena = try Arena.create(
                jobID: id, parameterCount: rounds, replicaNodes: [-1], workers: 4, vectorsPerReplica: 1, barriers: 1,
                exchangeVectorsPerWorker: 2)
            arena.barrier(0).configure(participants: 4, quorum: 3)
            arena.setState(.running)
            let results = try runDrill(id, barrier: 0, participants: 4, rounds: rounds)
            for r in results {
                #expect(r.mismatches == 0, "\(r.firstMismatch ?? "")")
                #expect(!r.stopped)
            }
            let counts = tally(arena, participants: 4, rounds: rounds)
            #expect(counts.allSatisfy { $0 == 3 }, "rounds not counting 3: \(counts.enumerated().filter { $0.element != 3 }.prefix(5))")
            #expect(results.map(\.counted).reduce(0, +) == 3 * rounds)
            #expect(results.map(\.completed).reduce(0, +) == rounds)
            #expect(UInt64(results.map(\.late).reduce(0, +)) == arena.barrier(0).lateArrivals)
            #expect(arena.barrier(0).completedRounds == UInt64(rounds))
        }
    }

    @Test("stopping wakes processes asleep on a barrier that cannot complete", arguments: [true, false])
    func stopWakes(wake: Bool) throws {
        try withJobID("bstop") { id in
            let arena = try Arena.create(
                jobID: id, parameterCount: 4, replicaNodes: [-1], workers: 3, vectorsPerReplica: 1, barriers: 1,
                exchangeVectorsPerWorker: 1)
            arena.setState(.running)
            let b = arena.barrier(0)
            // Two of three participants: round 0 never completes.
            let procs = try (0..<2).map { p in
                try startNuma(["arena", id, "--barrier-drill", "0", "--participant", "\(p)", "--rounds", "5", "--spins", "100", "--json"])
            }
            defer { for p in procs where p.isRunning { p.terminate() } }
            try waitFor("both participants asleep on the barrier", seconds: 60) { b.sleepers == 2 }
            let t0 = monotonicSeconds()
            if wake {
                arena.setState(.stopping)  // also wakes the sleepers
            } else {
                // Only the state word, no FUTEX_WAKE: the sleepers' 50 ms limit brings them back.
                arena.withUnsafeMapping { base, _ in
                    (base + MemoryLayout<lw_arena_header>.offset(of: \.state)!).assumingMemoryBound(to: UInt32.self)
                        .pointee = UInt32(LW_STATE_STOPPING.rawValue)
                }
            }
            try waitFor("both participants to exit", seconds: 30) { procs.allSatisfy { !$0.isRunning } }
            let elapsed = monotonicSeconds() - t0
            #expect(elapsed < 2, "stop took \(elapsed) s")
            for p in procs {
                #expect(p.terminationStatus == 0)
                let r = try JSONDecoder().decode(
                    BarrierDrill.Result.self, from: (p.standardOutput as! Pipe).fileHandleForReading.readDataToEndOfFile())
                #expect(r.stopped && r.counted == 0 && r.completed == 0, "\(r)")
            }
            #expect(b.round == 0 && b.completedRounds == 0)
            withExtendedLifetime(arena) {}  // the views point into its mapping
        }
    }
}

/// Per round, how many participants' tallies (exchange vector 1) say their arrival counted.
private func tally(_ arena: borrowing Arena, participants: Int, rounds: Int) -> [Int] {
    var counts = [Int](repeating: 0, count: rounds)
    for p in 0..<participants {
        let t = arena.exchangeVector(1, ofWorker: p)
        for r in 0..<rounds where t[r] == 1 { counts[r] += 1 }
    }
    return counts
}

/// Runs `lapwing-numa arena ID --barrier-drill B` as participants 0..<n at once and returns
/// their results; a process that fails is a test failure naming its stderr.
private func runDrill(_ id: String, barrier: Int, participants n: Int, rounds: Int) throws -> [BarrierDrill.Result] {
    let procs = try (0..<n).map { p in
        try startNuma(["arena", id, "--barrier-drill", "\(barrier)", "--participant", "\(p)", "--rounds", "\(rounds)", "--json"])
    }
    defer { for p in procs where p.isRunning { p.terminate() } }
    var results: [BarrierDrill.Result] = []
    for (i, p) in procs.enumerated() {
        let out = (p.standardOutput as! Pipe).fileHandleForReading.readDataToEndOfFile()
        let err = (p.standardError as! Pipe).fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard let r = try? JSONDecoder().decode(BarrierDrill.Result.self, from: out) else {
            throw LapwingError(
                .internalError,
                "participant \(i) exited \(p.terminationStatus): \(String(decoding: out, as: UTF8.self)) \(String(decoding: err, as: UTF8.self))")
        }
        results.append(r)
    }
    return results
}

private func startNuma(_ arguments: [String]) throws -> Process {
    let process = Process()
    process.executableURL = try lapwingNumaBinary()
    process.arguments = arguments
    process.standardOutput = Pipe()
    process.standardError = Pipe()
    try process.run()
    return process
}

private func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Polls `condition` every millisecond until it holds; throws naming `what` after `seconds`.
private func waitFor(_ what: String, seconds: Double, _ condition: () -> Bool) throws {
    let deadline = monotonicSeconds() + seconds
    while !condition() {
        guard monotonicSeconds() < deadline else { throw LapwingError(.busy, "timed out after \(seconds) s waiting for \(what)") }
        usleep(1000)
    }
}
