import Atomics
import CLapwing
import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// A job's shared-memory arena (design section 3): the POSIX shm object `/lapwing.<job-id>`,
/// mapped `MAP_SHARED` at a 2 MiB aligned address, laid out as `lapwing_layout.h` says.
///
/// Ownership is explicit and fixed at construction:
/// - ``create(jobID:parameterCount:replicaNodes:workers:vectorsPerReplica:barriers:exchangeVectorsPerWorker:workerReplicas:)`` returns the
///   **owner**: its `deinit` unmaps, closes and *unlinks* the object (only in the process that
///   created it: a forked worker that drops its inherited copy never unlinks). Call
///   ``keepSegment()`` to let the object outlive the owner.
/// - ``attach(jobID:)`` returns an **attachment**: its `deinit` unmaps and closes, and never
///   unlinks. ``unlink()`` or ``remove(jobID:)`` unlink explicitly.
///
/// Workers forked by the job host inherit the mapping; the addresses stay valid in the child.
/// Memory accessors hand out raw pointers into the mapping: they are valid only while this value
/// is alive, and other processes write the same memory concurrently (Hogwild-style, by design).
public struct Arena: ~Copyable {
    /// Who removes the object.
    public enum Ownership: String, Sendable, Codable {
        /// Created here; `deinit` unlinks the object (in the creating process only).
        case owner
        /// Attached to an existing object, or an owner after `keepSegment()`; `deinit` leaves it.
        case attachment
    }

    /// The validated job id.
    public let jobID: String
    /// The header, as created or as read and validated at attach.
    public let layout: ArenaLayout
    public private(set) var ownership: Ownership
    private let fd: Int32
    private let base: UnsafeMutableRawPointer
    private let ownerPID: pid_t

    private init(jobID: String, layout: ArenaLayout, ownership: Ownership, fd: Int32, base: UnsafeMutableRawPointer) {
        self.jobID = jobID
        self.layout = layout
        self.ownership = ownership
        self.fd = fd
        self.base = base
        self.ownerPID = getpid()
    }

    deinit {
        _ = lw_unmap(base, UInt64(layout.totalSize))
        _ = lw_close(fd)
        if ownership == .owner, getpid() == ownerPID {
            _ = lw_shm_unlink(Arena.segmentName(jobID: jobID))
        }
    }

    // MARK: Names

    /// The most characters a job id may have.
    public static let maxJobIDLength = Int(LW_JOB_ID_MAX)

    /// The shm name of a job's arena: `/lapwing.<job-id>`.
    public static func segmentName(jobID: String) -> String { "/lapwing.\(jobID)" }

    /// Free and total bytes of the file system that holds POSIX shared memory (/dev/shm).
    public static func sharedMemorySpace() throws(LapwingError) -> (available: UInt64, total: UInt64) {
        let fd = try syscall("open", object: "/dev/shm") { open("/dev/shm", O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        defer { close(fd) }
        var available: UInt64 = 0
        var total: UInt64 = 0
        try shimCall("fstatvfs", object: "/dev/shm") { lw_fd_fs_available(fd, &available, &total) }
        return (available, total)
    }

    /// Where the object shows up on Linux: `/dev/shm/lapwing.<job-id>`.
    public static func segmentPath(jobID: String) -> String { "/dev/shm/lapwing.\(jobID)" }

    /// Checks that `jobID` is 1...63 characters of `[A-Za-z0-9_-]`; throws `.invalidArgument`.
    public static func validateJobID(_ jobID: String) throws(LapwingError) {
        let ok =
            !jobID.isEmpty && jobID.utf8.count <= maxJobIDLength
            && jobID.utf8.allSatisfy { c in
                (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x5f
                    || c == 0x2d
            }
        guard ok else {
            throw LapwingError(
                .invalidArgument,
                "invalid job id '\(jobID)': use 1...\(maxJobIDLength) characters of A-Z a-z 0-9 _ -")
        }
    }

    // MARK: Create, attach, remove

    /// Creates the arena of job `jobID`: d = `parameterCount` floats per vector, one replica per
    /// entry of `replicaNodes` (its NUMA node, or -1 for no binding), `workers` worker slots plus
    /// the averager's and the job host's, and `vectorsPerReplica` vectors per replica (the replica
    /// itself, then the averager's snapshot and algorithm state).
    ///
    /// The synchronous algorithms also ask for `barriers` barriers (``barrier(_:)``; each starts
    /// with every worker as participant and quorum, see ``ArenaBarrier/configure(participants:quorum:)``)
    /// and `exchangeVectorsPerWorker` vectors of d floats per worker (``exchangeVector(_:ofWorker:)``,
    /// e.g. the gradient a minibatch step reduces), 2 MiB aligned like the replicas and bound to
    /// the node of the worker's replica, `replicaNodes[workerReplicas[w]]` (nil: not bound).
    ///
    /// Steps: `shm_open(O_CREAT | O_EXCL, 0600)`; a free-space check of the file system
    /// (`fstatvfs`); `ftruncate`; a 2 MiB aligned `mmap(MAP_SHARED)`; `mbind(MPOL_BIND,
    /// MPOL_MF_STRICT | MPOL_MF_MOVE)` of each replica's vectors to its node, before any page
    /// exists; `posix_fallocate` of the whole object (the pages are allocated now, under that
    /// policy, so a short /dev/shm fails here with `.noSpace` rather than SIGBUS later); zeroing
    /// (first touch); the header, with the magic stored last (release). A failed step undoes the
    /// earlier ones (unmap, close, unlink) before throwing.
    ///
    /// Errors: `.invalidArgument` (job id, shape, node), `.busy` (the object exists), `.noSpace`
    /// (not enough shared memory, or the node's memory is full), `.permissionDenied`, `.system`.
    ///
    /// The corresponding C functions are `shm_open`, `posix_fallocate`, `mmap` and `mbind`.
    public static func create(
        jobID: String, parameterCount: Int, replicaNodes: [Int32], workers: Int, vectorsPerReplica: Int = 2,
        barriers: Int = 0, exchangeVectorsPerWorker: Int = 0, workerReplicas: [Int]? = nil
    ) throws(LapwingError) -> Arena {
        try validateJobID(jobID)
        let path = segmentPath(jobID: jobID)
        let name = segmentName(jobID: jobID)
        var exchangeNodes: [Int32]?
        if let workerReplicas {
            guard workerReplicas.count == workers, workerReplicas.allSatisfy({ replicaNodes.indices.contains($0) })
            else {
                throw LapwingError(
                    .invalidArgument,
                    "\(path): worker replicas \(workerReplicas) must name one of replicas 0..<\(replicaNodes.count) for each of \(workers) workers"
                )
            }
            exchangeNodes = workerReplicas.map { replicaNodes[$0] }
        }
        var layout = try ArenaLayout.compute(
            jobID: jobID, parameterCount: parameterCount, replicaNodes: replicaNodes, workers: workers,
            vectorsPerReplica: vectorsPerReplica, barriers: barriers, exchangeVectorsPerWorker: exchangeVectorsPerWorker,
            exchangeNodes: exchangeNodes)
        let numa = NUMA.isAvailable
        for (r, node) in replicaNodes.enumerated() where node != -1 {
            guard node >= 0, NUMA.isUsable(node: node) || (!numa && node == 0) else {
                throw LapwingError(
                    .invalidArgument, "\(path): replica \(r) asks for NUMA node \(node), which has no usable memory here")
            }
        }
        layout.creatorPID = getpid()
        layout.createdRealtimeNanoseconds = realtimeNanoseconds()

        let fd: Int32
        do throws(LapwingError) {
            fd = try shimCall("shm_open", object: path) {
                lw_shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0o600)
            }
        } catch where error.errno == EEXIST {
            throw LapwingError(
                .busy, "\(path): an arena for job '\(jobID)' already exists (a live job, or a stale one to remove)",
                detail: error.detail, errno: error.errno)
        }
        // From here on a failure closes and unlinks; after mmap, the Arena value's deinit does it.
        let size = layout.totalSize
        let mapped: UnsafeMutableRawPointer
        do throws(LapwingError) {
            var available: UInt64 = 0
            var total: UInt64 = 0
            try shimCall("fstatvfs", object: path) { lw_fd_fs_available(fd, &available, &total) }
            guard UInt64(size) <= available else {
                throw LapwingError(
                    .noSpace,
                    "\(path): needs \(formatBytes(size)) of shared memory but its file system has \(formatBytes(Int(clamping: available))) free of \(formatBytes(Int(clamping: total)))",
                    errno: ENOSPC)
            }
            try shimCall("ftruncate", object: path) { lw_shm_truncate(fd, UInt64(size)) }
            var p: UnsafeMutableRawPointer?
            try shimCall("mmap", object: path) {
                lw_map_shared_aligned(fd, UInt64(size), UInt64(ArenaLayout.vectorAlignment), 1, &p)
            }
            mapped = p!
        } catch {
            _ = lw_close(fd)
            _ = lw_shm_unlink(name)
            throw error
        }
        let arena = Arena(jobID: jobID, layout: layout, ownership: .owner, fd: fd, base: mapped)
        // Bind before the first page exists: on shm the policy is kept with the object, so
        // posix_fallocate below (and any later fault, in any process) allocates on the node.
        if numa {
            for (r, node) in replicaNodes.enumerated() where node >= 0 {
                let start = mapped + layout.vectorOffset(0, ofReplica: r)
                let length = layout.vectorsPerReplica * layout.vectorStride
                try shimCall("mbind", object: "\(path): replica \(r) on NUMA node \(node)") {
                    lw_numa_bind(start, length, node, LW_MBIND_STRICT | LW_MBIND_MOVE)
                }
            }
            for (w, node) in layout.exchangeNodes.enumerated() where node >= 0 && layout.exchangeVectorsPerWorker > 0 {
                let start = mapped + layout.exchangeOffset(0, ofWorker: w)
                let length = layout.exchangeVectorsPerWorker * layout.vectorStride
                try shimCall("mbind", object: "\(path): exchange vectors of worker \(w) on NUMA node \(node)") {
                    lw_numa_bind(start, length, node, LW_MBIND_STRICT | LW_MBIND_MOVE)
                }
            }
        }
        do throws(LapwingError) {
            try shimCall("posix_fallocate", object: path) { lw_shm_fallocate(fd, UInt64(size)) }
        } catch {
            var e = error
            e.message = "\(path): posix_fallocate of \(formatBytes(size)) failed"
            if error.errno == ENOMEM {
                e.message += " (a NUMA node it is bound to is out of memory)"
            }
            throw e
        }
        // First touch: fault every page in (already on its node) and zero it.
        memset(mapped, 0, size)
        layout.write(to: mapped)
        for b in 0..<layout.barrierCount {
            ArenaBarrier.initialize(at: mapped + layout.barrierOffset(b), workers: workers)
        }
        UnsafeAtomic<UInt64>(at: mapped.assumingMemoryBound(to: UInt64.AtomicRepresentation.self))
            .store(ArenaLayout.magic, ordering: .releasing)
        return arena
    }

    /// Attaches to the existing arena of job `jobID`: opens it by name, validates the magic, the
    /// layout version, the job id, the offsets and the object's size against the header, and maps
    /// it read-write. The result does not unlink on `deinit`.
    ///
    /// Errors: `.invalidArgument` (job id), `.notFound` (no such arena), `.invalidData` (not an
    /// arena, or a damaged one), `.busy` (its creation has not finished), `.permissionDenied`.
    ///
    /// The corresponding C functions are `shm_open`, `pread` and `mmap`.
    public static func attach(jobID: String) throws(LapwingError) -> Arena {
        try validateJobID(jobID)
        let path = segmentPath(jobID: jobID)
        let fd: Int32
        do throws(LapwingError) {
            fd = try shimCall("shm_open", object: path) { lw_shm_open(segmentName(jobID: jobID), O_RDWR, 0) }
        } catch where error.code == .notFound {
            throw LapwingError(
                .notFound, "\(path): no arena for job '\(jobID)'", detail: error.detail, errno: error.errno)
        }
        do throws(LapwingError) {
            let fileSize = Int(try shimCall("fstat", object: path) { lw_fd_size(fd) })
            guard fileSize >= MemoryLayout<lw_arena_header>.size else {
                throw LapwingError(
                    .invalidData, "\(path): not a Lapwing arena (\(fileSize) bytes, smaller than a header)")
            }
            var header = lw_arena_header()
            try shimCall("pread", object: path) {
                lw_pread_exact(fd, &header, MemoryLayout<lw_arena_header>.size, 0)
            }
            var layout = try ArenaLayout.validate(header: header, jobID: jobID, fileSize: fileSize, object: path)
            var p: UnsafeMutableRawPointer?
            try shimCall("mmap", object: path) {
                lw_map_shared_aligned(fd, UInt64(layout.totalSize), UInt64(ArenaLayout.vectorAlignment), 1, &p)
            }
            do throws(LapwingError) {
                try layout.readReplicaTable(from: p!, object: path)
            } catch {
                _ = lw_unmap(p, UInt64(layout.totalSize))
                throw error
            }
            return Arena(jobID: jobID, layout: layout, ownership: .attachment, fd: fd, base: p!)
        } catch {
            _ = lw_close(fd)
            throw error
        }
    }

    /// Unlinks the object now; the mapping stays usable until this value goes away, and `deinit`
    /// will not unlink again. Throws `.notFound` if it is already gone.
    ///
    /// The corresponding C function is `shm_unlink`.
    public mutating func unlink() throws(LapwingError) {
        ownership = .attachment
        try Arena.remove(jobID: jobID)
    }

    /// Lets the object outlive this owner: `deinit` will unmap and close, but not unlink.
    public mutating func keepSegment() {
        ownership = .attachment
    }

    /// Unlinks the arena of job `jobID` (processes that have it mapped keep their mapping).
    /// Throws `.notFound` naming the segment if there is none.
    ///
    /// The corresponding C function is `shm_unlink`.
    public static func remove(jobID: String) throws(LapwingError) {
        try validateJobID(jobID)
        let path = segmentPath(jobID: jobID)
        do throws(LapwingError) {
            try shimCall("shm_unlink", object: path) { lw_shm_unlink(segmentName(jobID: jobID)) }
        } catch where error.code == .notFound {
            throw LapwingError(.notFound, "\(path): no arena for job '\(jobID)'", detail: error.detail, errno: error.errno)
        }
    }

    // MARK: Memory

    /// Replica `r` (vector 0 of the replica): d floats in shared memory.
    ///
    /// Unsafe: valid only while this `Arena` is alive; other processes read and write it at the
    /// same time without locks.
    public func replica(_ r: Int) -> UnsafeMutableBufferPointer<Float> {
        vector(0, ofReplica: r)
    }

    /// Vector `k` of replica `r` (0: the replica; 1...: snapshot s_r and algorithm state), d floats.
    ///
    /// Unsafe: valid only while this `Arena` is alive (see ``replica(_:)``).
    public func vector(_ k: Int, ofReplica r: Int) -> UnsafeMutableBufferPointer<Float> {
        let start = (base + layout.vectorOffset(k, ofReplica: r)).assumingMemoryBound(to: Float.self)
        return UnsafeMutableBufferPointer(start: start, count: layout.parameterCount)
    }

    /// Calls `body` with vector `k` of replica `r`; the pointer must not escape.
    public func withVector<T, E: Error>(
        _ k: Int, ofReplica r: Int, _ body: (UnsafeMutableBufferPointer<Float>) throws(E) -> T
    ) throws(E) -> T {
        try body(vector(k, ofReplica: r))
    }

    /// Calls `body` with the base address and size of the whole mapping; the pointer must not escape.
    public func withUnsafeMapping<T, E: Error>(_ body: (UnsafeMutableRawPointer, Int) throws(E) -> T) throws(E) -> T {
        try body(base, layout.totalSize)
    }

    /// The sum of vector `k` of replica `r`, as Double, in index order (a checksum that a second
    /// process computes identically).
    public func checksum(ofReplica r: Int, vector k: Int = 0) -> Double {
        var s = 0.0
        for x in vector(k, ofReplica: r) { s += Double(x) }
        return s
    }

    /// Exchange vector `k` of worker `w` (0..<E), d floats, on the node of the worker's replica.
    ///
    /// Unsafe: valid only while this `Arena` is alive (see ``replica(_:)``).
    public func exchangeVector(_ k: Int, ofWorker w: Int) -> UnsafeMutableBufferPointer<Float> {
        let start = (base + layout.exchangeOffset(k, ofWorker: w)).assumingMemoryBound(to: Float.self)
        return UnsafeMutableBufferPointer(start: start, count: layout.parameterCount)
    }

    // MARK: Barriers

    /// Barrier `b` (0..<B).
    ///
    /// Unsafe: the view is valid only while this `Arena` is alive.
    public func barrier(_ b: Int) -> ArenaBarrier {
        ArenaBarrier(
            index: b, address: base + layout.barrierOffset(b),
            stateWord: base + MemoryLayout<lw_arena_header>.offset(of: \lw_arena_header.state)!,
            capacity: layout.slotCount)
    }

    /// Wakes every process sleeping on any barrier (``ArenaBarrier/wakeAll()``), so that it looks at
    /// the job's state again. ``setState(_:)`` calls it when the state becomes `.stopping`.
    public func wakeBarrierWaiters() {
        for b in 0..<layout.barrierCount { barrier(b).wakeAll() }
    }

    // MARK: Slots and state

    /// Slot `i` (0..<W: workers, W: averager, W + 1: job host).
    ///
    /// Unsafe: the view is valid only while this `Arena` is alive.
    public func slot(_ i: Int) -> ArenaSlot {
        ArenaSlot(base + layout.slotOffset(i))
    }

    /// The slot of worker `w`.
    public func workerSlot(_ w: Int) -> ArenaSlot {
        precondition(w >= 0 && w < layout.workerCount, "worker \(w) out of 0..<\(layout.workerCount)")
        return slot(w)
    }

    /// The averager's slot.
    public var averagerSlot: ArenaSlot { slot(layout.averagerSlot) }

    /// The job host's slot.
    public var hostSlot: ArenaSlot { slot(layout.hostSlot) }

    private var stateWord: UnsafeAtomic<UInt32> {
        let p = base + MemoryLayout<lw_arena_header>.offset(of: \lw_arena_header.state)!
        return UnsafeAtomic(at: p.assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
    }

    /// The job's state (an acquiring load). An unknown value (a newer writer) reads as `nil`.
    public var state: ArenaState? {
        ArenaState(rawValue: stateWord.load(ordering: .acquiring))
    }

    /// Sets the job's state (a releasing store): what was written before is visible to whoever
    /// reads the new state. `.stopping` also wakes every process sleeping on a barrier, so that
    /// it leaves now rather than at the end of its sleep.
    public func setState(_ s: ArenaState) {
        stateWord.store(s.rawValue, ordering: .releasing)
        if s == .stopping { wakeBarrierWaiters() }
    }

    /// Moves the state from `expected` to `desired` if it is `expected` (acquire-release);
    /// returns whether it did. A move to `.stopping` wakes the barriers' sleepers as ``setState(_:)`` does.
    @discardableResult
    public func compareExchangeState(expected: ArenaState, desired: ArenaState) -> Bool {
        let moved = stateWord.compareExchange(
            expected: expected.rawValue, desired: desired.rawValue, ordering: .acquiringAndReleasing
        ).exchanged
        if moved && desired == .stopping { wakeBarrierWaiters() }
        return moved
    }
}

/// The job's state word (`enum lw_arena_state`).
public enum ArenaState: UInt32, Sendable, Codable, CaseIterable, CustomStringConvertible {
    /// Created; workers not started yet.
    case ready = 0
    case running = 1
    case paused = 2
    case stopping = 3

    public var description: String {
        switch self {
        case .ready: "ready"
        case .running: "running"
        case .paused: "paused"
        case .stopping: "stopping"
        }
    }
}

func realtimeNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
