import ArgumentParser
import Foundation
import LapwingArena
import LapwingCore

/// `lapwing-numa arena JOB-ID [--json]`, `lapwing-numa arena --list`, `lapwing-numa arena --remove JOB-ID`:
/// shows a job's shared-memory arena from outside the job. `--barrier-drill B --participant P`
/// joins a barrier of a test arena as one participant (see `BarrierDrill`).
struct ArenaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "arena",
        abstract:
            "Show a job's shared-memory arena: header, per-process counters, replica checksums and NUMA nodes, barriers, exchange vectors.",
        discussion: """
            Attaches to /dev/shm/lapwing.JOB-ID read-write without changing it (reading the replicas \
            maps their pages into this process), and detaches. --list shows every lapwing.* object.
            --barrier-drill is for testing a barrier on an arena that no job uses: it writes into the \
            participant's exchange vectors and arrives at the barrier for --rounds rounds, checking \
            every round, then prints what it saw (one JSON object with --json) and exits 1 if a \
            check failed.
            """
    )

    @Argument(help: "The job id (the arena is /dev/shm/lapwing.JOB-ID).")
    var jobID: String?

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    @Flag(help: "List the /dev/shm/lapwing.* objects with their sizes.")
    var list = false

    @Flag(help: "Unlink the arena of JOB-ID (processes that have it mapped keep it until they exit).")
    var remove = false

    @Option(help: "Pages sampled per replica for the NUMA node report.")
    var samples = 8

    @Option(help: ArgumentHelp("Join barrier B as one participant of a drill (for tests; writes into the arena).", valueName: "B"))
    var barrierDrill: Int?

    @Option(help: "With --barrier-drill: the participant index (uses that worker's exchange vectors).")
    var participant = 0

    @Option(help: "With --barrier-drill: run until the barrier's round reaches this.")
    var rounds = 1000

    @Option(help: "With --barrier-drill: polls of the round word before sleeping.")
    var spins = ArenaBarrier.defaultSpins

    func validate() throws {
        if list {
            guard jobID == nil, !remove else { throw ValidationError("--list takes no JOB-ID and no --remove.") }
        } else {
            guard let jobID else { throw ValidationError("Give a JOB-ID, or --list.") }
            do {
                try Arena.validateJobID(jobID)
            } catch {
                throw ValidationError(error.message)
            }
        }
        guard samples > 0 else { throw ValidationError("--samples must be positive.") }
        if barrierDrill != nil {
            guard !list, !remove else { throw ValidationError("--barrier-drill takes no --list or --remove.") }
            guard participant >= 0, rounds > 0, spins >= 0 else {
                throw ValidationError("--participant and --spins must be >= 0, --rounds positive.")
            }
        }
    }

    func run() throws {
        var failedChecks = false
        do throws(LapwingError) {
            if list {
                try printList()
            } else if let b = barrierDrill {
                let arena = try Arena.attach(jobID: jobID!)
                let result = try BarrierDrill(barrier: b, participant: participant, rounds: rounds, spins: spins)
                    .run(in: arena)
                if json {
                    print(try encode(result))
                } else {
                    print(
                        "participant \(result.participant): counted \(result.counted), late \(result.late), completed \(result.completed), mismatches \(result.mismatches)\(result.stopped ? ", stopped" : "")"
                    )
                    if let m = result.firstMismatch { print("first mismatch: \(m)") }
                }
                failedChecks = result.mismatches > 0
            } else if remove {
                try Arena.remove(jobID: jobID!)
                if !json { print("removed \(Arena.segmentPath(jobID: jobID!))") }
            } else {
                let arena = try Arena.attach(jobID: jobID!)
                var report = try arena.report(samplesPerReplica: samples)
                report.dataCopies = DataCopyPages.report(jobID: jobID!, processes: report.slots.map { ($0.role, $0.pid) })
                if json {
                    print(try encode(report))
                } else {
                    print(text(report), terminator: "")
                }
            }
        } catch {
            FileHandle.standardError.write(Data("lapwing-numa arena: \(error)\n".utf8))
            throw ExitCode(error.code == .notFound ? ExitStatus.noSuchJob : ExitStatus.of(error.code))
        }
        if failedChecks { throw ExitCode(1) }
    }

    private func printList() throws(LapwingError) {
        let segments = try Arena.listSegments()
        if json {
            print(try encode(segments))
            return
        }
        if segments.isEmpty {
            print("no arenas in /dev/shm")
            return
        }
        for s in segments {
            print("\(s.jobID)\t\(formatBytes(s.size))\t\(s.path)")
        }
    }

    private func encode<T: Encodable>(_ value: T) throws(LapwingError) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            return String(decoding: try encoder.encode(value), as: UTF8.self)
        } catch {
            throw LapwingError(.internalError, "cannot encode the report as JSON", detail: "\(error)")
        }
    }

    private func text(_ r: ArenaReport) -> String {
        let l = r.layout
        var out = """
            arena \(r.path) (job \(l.jobID), layout v\(l.layoutVersion), created by pid \(l.creatorPID))
              state    \(r.state)
              d        \(l.parameterCount) floats (\(formatBytes(r.vectorBytes)) per vector, stride \(formatBytes(l.vectorStride)))
              R        \(l.replicaCount) replicas x V \(l.vectorsPerReplica) vectors
              W        \(l.workerCount) workers (\(l.slotCount) slots with the averager and the host)
              B        \(l.barrierCount) barriers (\(l.barrierStride) bytes each with the arrival log)
              E        \(l.exchangeVectorsPerWorker) exchange vectors per worker (at \(l.exchangeOffset))
              size     \(formatBytes(r.totalBytes)) (\(r.totalBytes) bytes; data at \(l.dataOffset))
            slots:

            """
        for s in r.slots {
            out += "  \(s.index)\t\(s.role)\tpid \(s.pid)\tsteps \(s.steps)\tsamples \(s.samples)\theartbeat \(s.heartbeatNanoseconds) ns\n"
        }
        out += "replicas:\n"
        for p in r.replicas {
            let node = p.node.map { "node \($0)" } ?? "nodes \(p.pageNodes)"
            let intended = p.intendedNode < 0 ? "unbound" : "bound to node \(p.intendedNode)"
            out += "  \(p.index)\tchecksum \(p.checksum)\t\(node) (\(intended), \(p.pageNodes.count) pages sampled)\n"
        }
        if !r.barriers.isEmpty { out += "barriers:\n" }
        for b in r.barriers {
            out += "  \(b.index)\tquorum \(b.quorum) of \(b.participants)\tround \(b.round)\tcompleted \(b.completedRounds)\tlate \(b.lateArrivals)\tsleeping \(b.sleepers)\n"
        }
        if !r.exchange.isEmpty { out += "exchange vectors:\n" }
        for e in r.exchange {
            let intended = e.intendedNode < 0 ? "unbound" : "bound to node \(e.intendedNode)"
            out += "  worker \(e.worker)\tchecksums \(e.vectorChecksums)\tnode \(e.node) (\(intended))\n"
        }
        let copies = r.dataCopies ?? []
        out += copies.isEmpty ? "data copies: none (the workers read the one loaded copy)\n" : "data copies (numa_maps):\n"
        func nodes(_ p: [DataCopyPages.NodePages]) -> String { p.map { "N\($0.node)=\($0.pages)" }.joined(separator: " ") }
        for c in copies {
            let readers = c.readers.map { "\($0.role) (\(nodes($0.pages)))" }.joined(separator: ", ")
            out += "  node \(c.node)\t\(formatBytes(c.bytes))\t\(c.policy)\tpages \(nodes(c.pages))\t\(c.isOnItsNode ? "on its node" : "NOT all on its node")\tread by \(readers.isEmpty ? "none yet" : readers)\n"
        }
        return out
    }
}
