import CLapwing
import Foundation
import LapwingArena
import LapwingCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

private let twoMiB = 2 * 1024 * 1024

@Suite("Arena layout")
struct ArenaLayoutTests {
    @Test("vectors are 2 MiB strided and start after the header, slots and replica table")
    func layoutMath() throws {
        let small = try ArenaLayout.compute(
            jobID: "x", parameterCount: 1, replicaNodes: [-1, -1], workers: 4, vectorsPerReplica: 3)
        #expect(small.headerSize == 256)
        #expect(small.slotsOffset == 256)
        #expect(small.slotCount == 6)
        #expect(small.replicasOffset == 256 + 6 * 64)
        #expect(small.dataOffset == twoMiB)
        #expect(small.vectorStride == twoMiB)
        #expect(small.totalSize == twoMiB + 2 * 3 * twoMiB)
        #expect(small.vectorOffset(2, ofReplica: 1) == twoMiB + 5 * twoMiB)
        #expect(small.averagerSlot == 4 && small.hostSlot == 5)

        let big = try ArenaLayout.compute(
            jobID: "x", parameterCount: twoMiB / 4 + 1, replicaNodes: [0], workers: 1, vectorsPerReplica: 1)
        #expect(big.vectorStride == 2 * twoMiB)
    }

    @Test("shapes out of range are invalid arguments")
    func badShapes() {
        for (d, r, w, v) in [(0, 1, 1, 1), (1, 0, 1, 1), (1, 1, 0, 1), (1, 1, 1, 0), (1, 1, 1, 8), (Int.max / 2, 1, 1, 1)] {
            _ = expectLapwingError(.invalidArgument) { () throws(LapwingError) in
                _ = try ArenaLayout.compute(
                    jobID: "x", parameterCount: d, replicaNodes: Array(repeating: -1, count: r), workers: w,
                    vectorsPerReplica: v)
            }
        }
    }
}

@Suite("Arena in shared memory")
struct ArenaTests {
    @Test("create: /dev/shm/lapwing.<id> is 0600 and big enough; vectors 2 MiB aligned; slots on own lines")
    func create() throws {
        try withJobID("create") { id in
            let arena = try Arena.create(jobID: id, parameterCount: 1000, replicaNodes: [0, -1], workers: 3, vectorsPerReplica: 3)
            #expect(arena.ownership == .owner)
            let st = try #require(statFile(Arena.segmentPath(jobID: id)))
            #expect(st.mode == 0o600)
            #expect(st.size >= arena.layout.totalSize)
            #expect(arena.layout.replicaNodes == [0, -1])
            #expect(arena.state == .ready)
            for r in 0..<2 {
                for k in 0..<3 {
                    let v = arena.vector(k, ofReplica: r)
                    #expect(v.count == 1000)
                    #expect(Int(bitPattern: v.baseAddress) % twoMiB == 0)
                    #expect(v.allSatisfy { $0 == 0 })
                }
            }
            let slots = (0..<arena.layout.slotCount).map { Int(bitPattern: arena.slot($0).address) }
            #expect(slots.count == 5)
            #expect(slots.allSatisfy { $0 % 64 == 0 })
            #expect(Set(slots.map { $0 / 64 }).count == slots.count)
            #expect(Int(bitPattern: arena.averagerSlot.address) == slots[3])
            #expect(numaMapsPolicy(of: UnsafeRawPointer(arena.replica(0).baseAddress!)) == "bind:0")
            #expect(numaMapsPolicy(of: UnsafeRawPointer(arena.replica(1).baseAddress!)) == "default")
            #expect(Int(bitPattern: arena.hostSlot.address) == slots[4])
        }
    }

    @Test("counters and state word are atomic over the mapping, and shared between mappings")
    func countersAndState() throws {
        try withJobID("atomics") { id in
            let owner = try Arena.create(jobID: id, parameterCount: 16, replicaNodes: [-1], workers: 2)
            let other = try Arena.attach(jobID: id)
            #expect(other.ownership == .attachment)
            let address = UInt(bitPattern: owner.workerSlot(1).address)
            DispatchQueue.concurrentPerform(iterations: 4) { _ in
                // Rebuilt from an address in each thread, as a worker would from its mapping.
                let slot = ArenaSlot(unsafeAddress: UnsafeMutableRawPointer(bitPattern: address)!)
                for _ in 0..<10_000 { slot.addSteps() }
            }
            #expect(owner.workerSlot(1).steps == 40_000)
            owner.workerSlot(1).addSamples(640)
            owner.hostSlot.setPID(getpid())
            owner.averagerSlot.beat(at: 123)
            // A second mapping of the same object sees the same words.
            #expect(other.workerSlot(1).steps == 40_000)
            #expect(other.workerSlot(1).samples == 640)
            #expect(other.hostSlot.pid == getpid())
            #expect(other.averagerSlot.heartbeatNanoseconds == 123)
            #expect(other.workerSlot(0).steps == 0)
            owner.setState(.running)
            #expect(other.state == .running)
            let moved = other.compareExchangeState(expected: .running, desired: .paused)
            #expect(moved)
            let movedAgain = other.compareExchangeState(expected: .running, desired: .stopping)
            #expect(!movedAgain)
            #expect(owner.state == .paused)
            other.replica(0)[3] = 2.5
            #expect(owner.replica(0)[3] == 2.5)
        }
    }

    @Test("a second process (lapwing-numa arena --json) sees the replica, the counters and the node")
    func secondProcess() throws {
        try withJobID("proc") { id in
            let arena = try Arena.create(jobID: id, parameterCount: 3000, replicaNodes: [0, 0], workers: 3)
            let x = arena.replica(1)
            for i in x.indices { x[i] = Float(i % 7) * 0.5 - 1 }
            arena.workerSlot(2).addSteps(41)
            arena.workerSlot(2).addSteps()
            arena.workerSlot(2).addSamples(42 * 16)
            arena.workerSlot(2).setPID(4242)
            arena.setState(.running)
            let expected = arena.checksum(ofReplica: 1)
            #expect(expected != 0)

            let run = try runLapwingNuma(["arena", id, "--json"])
            #expect(run.status == 0, "\(run.stderr)")
            let report = try JSONDecoder().decode(ArenaReport.self, from: run.stdout)
            #expect(report.layout == arena.layout)
            #expect(report.state == "running")
            #expect(report.replicas.count == 2)
            #expect(report.replicas[1].checksum == expected)
            #expect(report.replicas[0].checksum == 0)
            #expect(report.replicas[1].node == 0)
            #expect(report.replicas[1].pageNodes.allSatisfy { $0 == 0 })
            #expect(report.slots.count == 5)
            #expect(report.slots[2].steps == 42)
            #expect(report.slots[2].samples == 42 * 16)
            #expect(report.slots[2].pid == 4242)
            #expect(report.slots[2].role == "worker 2")
            #expect(report.slots[4].role == "host")

            // The text form and --list name it too.
            let text = try runLapwingNuma(["arena", id])
            #expect(text.status == 0)
            #expect(String(decoding: text.stdout, as: UTF8.self).contains("lapwing.\(id)"))
            let list = try runLapwingNuma(["arena", "--list", "--json"])
            let segments = try JSONDecoder().decode([ArenaSegment].self, from: list.stdout)
            #expect(segments.contains { $0.jobID == id && $0.size >= arena.layout.totalSize })
        }
    }

    @Test("replicas bound to node 0 have their pages on node 0")
    func placement() throws {
        try withJobID("numa") { id in
            let arena = try Arena.create(jobID: id, parameterCount: 1 << 20, replicaNodes: [0, 0], workers: 1, vectorsPerReplica: 3)
            let report = try arena.replicaNodeReport(samplesPerReplica: 16)
            #expect(report.count == 2)
            for p in report {
                #expect(p.intendedNode == 0)
                #expect(p.pageNodes.count == 16)
                #expect(p.pageNodes.allSatisfy { $0 == 0 }, "\(p.pageNodes)")
                #expect(p.isOnIntendedNode)
            }
            // The kernel's own account: the replicas' ranges carry the bind policy (numa_maps).
            for r in 0..<2 {
                let policy = try #require(numaMapsPolicy(of: UnsafeRawPointer(arena.replica(r).baseAddress!)))
                #expect(policy == "bind:0", "replica \(r): \(policy)")
            }
            let last = arena.vector(2, ofReplica: 1)
            #expect(try arena.nodeOfPage(UnsafeRawPointer(last.baseAddress!)) == 0)
            #expect(try arena.nodeOfPage(UnsafeRawPointer(last.baseAddress! + (last.count - 1))) == 0)
        }
    }

    @Test("a node that does not exist is an invalid argument, and nothing is left behind")
    func badNode() {
        let id = uniqueJobID("node")
        let e = expectLapwingError(.invalidArgument) { () throws(LapwingError) in
            _ = try Arena.create(jobID: id, parameterCount: 10, replicaNodes: [0, 4000], workers: 1)
        }
        #expect(e?.message.contains("node 4000") == true)
        #expect(statFile(Arena.segmentPath(jobID: id)) == nil)
    }

    @Test("the owner's release unlinks; an attachment's does not; attaching a missing id is .notFound")
    func cleanup() throws {
        let id = uniqueJobID("cleanup")
        let path = Arena.segmentPath(jobID: id)
        do {
            let owner = try Arena.create(jobID: id, parameterCount: 10, replicaNodes: [-1], workers: 1)
            do {
                let attached = try Arena.attach(jobID: id)
                #expect(attached.layout == owner.layout)
            }
            #expect(statFile(path) != nil, "an attachment's deinit must not unlink")
        }
        #expect(statFile(path) == nil, "the owner's deinit unlinks")
        let e = expectLapwingError(.notFound) { () throws(LapwingError) in _ = try Arena.attach(jobID: id) }
        #expect(e?.message.contains("lapwing.\(id)") == true)
        let r = expectLapwingError(.notFound) { () throws(LapwingError) in try Arena.remove(jobID: id) }
        #expect(r?.message.contains("lapwing.\(id)") == true)

        // unlink() now: the mapping stays usable, the name is gone, deinit does not complain.
        var owner = try Arena.create(jobID: id, parameterCount: 10, replicaNodes: [-1], workers: 1)
        try owner.unlink()
        #expect(statFile(path) == nil)
        #expect(owner.ownership == .attachment)
        owner.replica(0)[0] = 1
        #expect(owner.checksum(ofReplica: 0) == 1)

        // keepSegment(): the object outlives its owner until removed.
        do {
            var kept = try Arena.create(jobID: id, parameterCount: 10, replicaNodes: [-1], workers: 1)
            kept.keepSegment()
        }
        #expect(statFile(path) != nil)
        try Arena.remove(jobID: id)
        #expect(statFile(path) == nil)
    }

    @Test("an arena bigger than /dev/shm's free space fails with .noSpace and leaves nothing")
    func noSpace() throws {
        var sv = statvfs()
        #expect(statvfs("/dev/shm", &sv) == 0)
        let free = Int(sv.f_bavail) * Int(sv.f_frsize)
        let total = Int(sv.f_blocks) * Int(sv.f_frsize)
        // More than the whole file system, so not even a racing fallocate could allocate it.
        let floats = (max(free, total) + (1 << 30)) / 4
        let id = uniqueJobID("nospace")
        let e = expectLapwingError(.noSpace) { () throws(LapwingError) in
            _ = try Arena.create(jobID: id, parameterCount: floats, replicaNodes: [-1], workers: 1, vectorsPerReplica: 1)
        }
        #expect(e?.message.contains("lapwing.\(id)") == true, "\(String(describing: e))")
        #expect(e?.message.contains("GiB") == true, "the size is named: \(String(describing: e))")
        #expect(statFile(Arena.segmentPath(jobID: id)) == nil)
    }

    @Test("creating an id that exists is .busy; the existing arena is untouched")
    func busy() throws {
        try withJobID("busy") { id in
            let first = try Arena.create(jobID: id, parameterCount: 10, replicaNodes: [-1], workers: 1)
            first.replica(0)[0] = 7
            let e = expectLapwingError(.busy) { () throws(LapwingError) in
                _ = try Arena.create(jobID: id, parameterCount: 10, replicaNodes: [-1], workers: 1)
            }
            #expect(e?.message.contains("lapwing.\(id)") == true)
            #expect(statFile(Arena.segmentPath(jobID: id)) != nil)
            // Bound to a name: replica(_:) points into the mapping, which a temporary would unmap.
            let again = try Arena.attach(jobID: id)
            #expect(again.replica(0)[0] == 7)
        }
    }

    @Test("invalid job ids are rejected", arguments: ["", "a/b", "a.b", "..", "a b", "ü", String(repeating: "x", count: 64)])
    func invalidJobID(_ id: String) {
        _ = expectLapwingError(.invalidArgument) { () throws(LapwingError) in
            _ = try Arena.create(jobID: id, parameterCount: 10, replicaNodes: [-1], workers: 1)
        }
        _ = expectLapwingError(.invalidArgument) { () throws(LapwingError) in _ = try Arena.attach(jobID: id) }
    }

    @Test("the longest valid job id works")
    func longJobID() throws {
        let id = String(repeating: "z", count: Arena.maxJobIDLength - 12) + uniqueJobID().suffix(12)
        defer { try? Arena.remove(jobID: id) }
        let arena = try Arena.create(jobID: id, parameterCount: 10, replicaNodes: [-1], workers: 1)
        #expect(try Arena.attach(jobID: id).layout.jobID == arena.layout.jobID)
    }

    @Test("attaching an object that is not an arena is .invalidData naming it")
    func badMagic() throws {
        try withJobID("junk") { id in
            try writeSegment(id, bytes: [UInt8](repeating: 0xAB, count: 8192))
            let e = expectLapwingError(.invalidData) { () throws(LapwingError) in _ = try Arena.attach(jobID: id) }
            #expect(e?.message.contains("lapwing.\(id)") == true)
            #expect(e?.message.contains("magic") == true)
            // The CLI says so too, with a failing status.
            let run = try runLapwingNuma(["arena", id, "--json"])
            #expect(run.status != 0)
            #expect(run.stderr.contains("lapwing.\(id)"))
        }
        try withJobID("tiny") { id in
            try writeSegment(id, bytes: [1, 2, 3])
            let e = expectLapwingError(.invalidData) { () throws(LapwingError) in _ = try Arena.attach(jobID: id) }
            #expect(e?.message.contains("lapwing.\(id)") == true)
        }
        try withJobID("unfinished") { id in
            try writeSegment(id, bytes: [UInt8](repeating: 0, count: 4096))
            _ = expectLapwingError(.busy) { () throws(LapwingError) in _ = try Arena.attach(jobID: id) }
        }
    }

    @Test("a header that lies about its size is .invalidData")
    func truncated() throws {
        try withJobID("trunc") { id in
            do {
                var arena = try Arena.create(jobID: id, parameterCount: 10, replicaNodes: [-1], workers: 1)
                arena.keepSegment()
            }
            let fd = lw_shm_open(Arena.segmentName(jobID: id), O_RDWR, 0)
            #expect(fd >= 0)
            #expect(lw_shm_truncate(fd, 4096) == 0)
            _ = lw_close(fd)
            let e = expectLapwingError(.invalidData) { () throws(LapwingError) in _ = try Arena.attach(jobID: id) }
            #expect(e?.message.contains("lapwing.\(id)") == true)
        }
    }
}

/// Creates /dev/shm/lapwing.<id> holding `bytes`, as something other than Lapwing might.
private func writeSegment(_ id: String, bytes: [UInt8]) throws {
    let fd = lw_shm_open(Arena.segmentName(jobID: id), O_RDWR | O_CREAT | O_EXCL, 0o600)
    try #require(fd >= 0)
    defer { _ = lw_close(fd) }
    let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    try #require(n == bytes.count)
}

/// The memory policy /proc/self/numa_maps shows for the mapping holding `address` (the line with
/// the highest start address not above it: adjacent ranges with one policy share a line).
private func numaMapsPolicy(of address: UnsafeRawPointer) -> String? {
    guard let text = try? String(contentsOfFile: "/proc/self/numa_maps", encoding: .utf8) else { return nil }
    let target = UInt(bitPattern: address)
    var best: (start: UInt, policy: String)?
    for line in text.split(separator: "\n") {
        let fields = line.split(separator: " ")
        guard fields.count > 1, let start = UInt(fields[0], radix: 16), start <= target else { continue }
        if best == nil || start > best!.start { best = (start, String(fields[1])) }
    }
    return best?.policy
}
