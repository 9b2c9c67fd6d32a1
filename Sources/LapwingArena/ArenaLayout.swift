import CLapwing
import LapwingCore

/// Where everything lives in a job's arena: the numbers of `struct lw_arena_header`,
/// `struct lw_replica_desc` and the exchange node table (CShims/include/lapwing_layout.h), read
/// once into a Swift value.
///
/// Offsets are bytes from the start of the shared-memory object (and of the mapping).
public struct ArenaLayout: Sendable, Equatable, Codable {
    /// The magic number at offset 0 of a complete arena ("LAPWING\u{1}" little-endian).
    public static let magic: UInt64 = LW_ARENA_MAGIC
    /// The layout version this build writes and reads.
    public static let version: UInt32 = LW_LAYOUT_VERSION
    /// Every vector starts on a multiple of this (2 MiB), and so does the mapping.
    public static let vectorAlignment = Int(LW_VECTOR_ALIGN)
    /// Bytes of one process slot (one cache line).
    public static let slotSize = MemoryLayout<lw_slot>.size
    /// The most vectors a replica can have, the replica itself included.
    public static let maxVectorsPerReplica = Int(LW_MAX_VECTORS)
    /// The most barriers an arena can have.
    public static let maxBarriers = Int(LW_MAX_BARRIERS)
    /// The most exchange vectors a worker can have.
    public static let maxExchangeVectorsPerWorker = Int(LW_MAX_EXCHANGE_VECTORS)

    public var jobID: String
    public var layoutVersion: UInt32
    /// d: float32 values in every vector.
    public var parameterCount: Int
    /// R.
    public var replicaCount: Int
    /// W.
    public var workerCount: Int
    /// V: vectors per replica, the replica itself (vector 0) included.
    public var vectorsPerReplica: Int
    /// W + 2: the workers, the averager (index W) and the job host (index W + 1).
    public var slotCount: Int
    public var headerSize: Int
    public var slotsOffset: Int
    public var replicasOffset: Int
    /// B: barriers (`struct lw_barrier`, each followed by its arrival log).
    public var barrierCount: Int
    public var barriersOffset: Int
    /// Bytes from one barrier to the next: its cache line and its log of `slotCount` entries.
    public var barrierStride: Int
    public var exchangeNodesOffset: Int
    public var dataOffset: Int
    /// Bytes from one vector to the next: d * 4 rounded up to 2 MiB.
    public var vectorStride: Int
    /// E: exchange vectors per worker (after the replicas' vectors).
    public var exchangeVectorsPerWorker: Int
    public var exchangeOffset: Int
    /// The NUMA node each worker's exchange vectors are bound to; -1 where they are not bound.
    public var exchangeNodes: [Int32]
    /// Bytes of the whole object.
    public var totalSize: Int
    /// The NUMA node each replica's pages are bound to; -1 where they are not bound.
    public var replicaNodes: [Int32]
    public var creatorPID: Int32
    public var createdRealtimeNanoseconds: UInt64

    /// The slot index of the averager.
    public var averagerSlot: Int { workerCount }
    /// The slot index of the job host.
    public var hostSlot: Int { workerCount + 1 }

    /// The byte offset of vector `k` of replica `r`.
    public func vectorOffset(_ k: Int, ofReplica r: Int) -> Int {
        precondition(r >= 0 && r < replicaCount, "replica \(r) out of 0..<\(replicaCount)")
        precondition(k >= 0 && k < vectorsPerReplica, "vector \(k) out of 0..<\(vectorsPerReplica)")
        return dataOffset + (r * vectorsPerReplica + k) * vectorStride
    }

    /// The byte offset of exchange vector `k` of worker `w`.
    public func exchangeOffset(_ k: Int, ofWorker w: Int) -> Int {
        precondition(w >= 0 && w < workerCount, "worker \(w) out of 0..<\(workerCount)")
        precondition(
            k >= 0 && k < exchangeVectorsPerWorker, "exchange vector \(k) out of 0..<\(exchangeVectorsPerWorker)")
        return exchangeOffset + (w * exchangeVectorsPerWorker + k) * vectorStride
    }

    /// The byte offset of barrier `b` (its `struct lw_barrier`; its arrival log follows).
    public func barrierOffset(_ b: Int) -> Int {
        precondition(b >= 0 && b < barrierCount, "barrier \(b) out of 0..<\(barrierCount)")
        return barriersOffset + b * barrierStride
    }

    /// The byte offset of slot `i`.
    public func slotOffset(_ i: Int) -> Int {
        precondition(i >= 0 && i < slotCount, "slot \(i) out of 0..<\(slotCount)")
        return slotsOffset + i * ArenaLayout.slotSize
    }

    /// Computes the layout for the given shape with `lw_layout_compute`: `barriers` barriers and
    /// `exchangeVectorsPerWorker` vectors per worker, bound to `exchangeNodes[w]` (nil: none bound).
    /// Throws `.invalidArgument` for an empty or oversized shape.
    public static func compute(
        jobID: String, parameterCount: Int, replicaNodes: [Int32], workers: Int, vectorsPerReplica: Int,
        barriers: Int = 0, exchangeVectorsPerWorker: Int = 0, exchangeNodes: [Int32]? = nil
    ) throws(LapwingError) -> ArenaLayout {
        let what = "arena \(Arena.segmentPath(jobID: jobID))"
        guard parameterCount > 0 else {
            throw LapwingError(.invalidArgument, "\(what): parameter count must be positive, not \(parameterCount)")
        }
        guard !replicaNodes.isEmpty, replicaNodes.count <= Int(UInt32.max) else {
            throw LapwingError(.invalidArgument, "\(what): needs at least one replica")
        }
        guard workers > 0, workers <= Int(UInt32.max / 4) - Int(LW_EXTRA_SLOTS) else {
            throw LapwingError(
                .invalidArgument, "\(what): worker count must be in 1...\(Int(UInt32.max / 4) - 2), not \(workers)")
        }
        guard (0...maxBarriers).contains(barriers) else {
            throw LapwingError(.invalidArgument, "\(what): barrier count must be in 0...\(maxBarriers), not \(barriers)")
        }
        guard (0...maxExchangeVectorsPerWorker).contains(exchangeVectorsPerWorker) else {
            throw LapwingError(
                .invalidArgument,
                "\(what): exchange vectors per worker must be in 0...\(maxExchangeVectorsPerWorker), not \(exchangeVectorsPerWorker)"
            )
        }
        if let exchangeNodes, exchangeNodes.count != workers {
            throw LapwingError(
                .invalidArgument,
                "\(what): \(exchangeNodes.count) exchange nodes given for \(workers) workers (one per worker)")
        }
        guard (1...maxVectorsPerReplica).contains(vectorsPerReplica) else {
            throw LapwingError(
                .invalidArgument,
                "\(what): vectors per replica must be in 1...\(maxVectorsPerReplica), not \(vectorsPerReplica)")
        }
        var l = lw_layout()
        let rc = lw_layout_compute(
            UInt64(parameterCount), UInt32(replicaNodes.count), UInt32(workers), UInt32(vectorsPerReplica),
            UInt32(barriers), UInt32(exchangeVectorsPerWorker), &l)
        guard rc == 0, l.total_size <= UInt64(Int.max) else {
            throw LapwingError(
                .invalidArgument,
                "\(what): \(replicaNodes.count) x \(vectorsPerReplica) + \(workers) x \(exchangeVectorsPerWorker) vectors of \(parameterCount) floats do not fit in 64 bits"
            )
        }
        return ArenaLayout(
            jobID: jobID, layoutVersion: version, parameterCount: parameterCount,
            replicaCount: replicaNodes.count, workerCount: workers, vectorsPerReplica: vectorsPerReplica,
            slotCount: Int(l.slot_count), headerSize: Int(l.header_size), slotsOffset: Int(l.slots_offset),
            replicasOffset: Int(l.replicas_offset), barrierCount: barriers, barriersOffset: Int(l.barriers_offset),
            barrierStride: Int(l.barrier_stride), exchangeNodesOffset: Int(l.exchange_nodes_offset),
            dataOffset: Int(l.data_offset), vectorStride: Int(l.vector_stride),
            exchangeVectorsPerWorker: exchangeVectorsPerWorker, exchangeOffset: Int(l.exchange_offset),
            exchangeNodes: exchangeNodes ?? Array(repeating: -1, count: workers), totalSize: Int(l.total_size),
            replicaNodes: replicaNodes, creatorPID: 0, createdRealtimeNanoseconds: 0)
    }

    /// Writes the header (magic left 0, state READY), the replica table and the exchange node table
    /// at `base`. The barriers are written by `ArenaBarrier.initialize`.
    func write(to base: UnsafeMutableRawPointer) {
        var h = lw_arena_header()
        h.magic = 0
        h.layout_version = layoutVersion
        h.header_size = UInt32(MemoryLayout<lw_arena_header>.size)
        withUnsafeMutableBytes(of: &h.job_id) { dst in
            let utf8 = Array(jobID.utf8)
            precondition(utf8.count < dst.count, "job id was validated")
            dst.copyBytes(from: utf8)
        }
        h.param_count = UInt64(parameterCount)
        h.replica_count = UInt32(replicaCount)
        h.worker_count = UInt32(workerCount)
        h.vectors_per_replica = UInt32(vectorsPerReplica)
        h.slot_count = UInt32(slotCount)
        h.total_size = UInt64(totalSize)
        h.slots_offset = UInt64(slotsOffset)
        h.replicas_offset = UInt64(replicasOffset)
        h.data_offset = UInt64(dataOffset)
        h.vector_stride = UInt64(vectorStride)
        h.barrier_count = UInt32(barrierCount)
        h.barriers_offset = UInt64(barriersOffset)
        h.barrier_stride = UInt32(barrierStride)
        h.exchange_nodes_offset = UInt64(exchangeNodesOffset)
        h.exchange_offset = UInt64(exchangeOffset)
        h.exchange_vectors = UInt32(exchangeVectorsPerWorker)
        h.creator_pid = creatorPID
        h.created_realtime_ns = createdRealtimeNanoseconds
        h.state = UInt32(LW_STATE_READY.rawValue)
        base.storeBytes(of: h, as: lw_arena_header.self)
        for r in 0..<replicaCount {
            var d = lw_replica_desc()
            d.node = replicaNodes[r]
            d.vector_count = UInt32(vectorsPerReplica)
            withUnsafeMutableBytes(of: &d.vector_offset) { offsets in
                for k in 0..<vectorsPerReplica {
                    offsets.storeBytes(
                        of: UInt64(vectorOffset(k, ofReplica: r)), toByteOffset: k * 8, as: UInt64.self)
                }
            }
            base.storeBytes(
                of: d, toByteOffset: replicasOffset + r * MemoryLayout<lw_replica_desc>.size,
                as: lw_replica_desc.self)
        }
        for w in 0..<workerCount {
            base.storeBytes(of: exchangeNodes[w], toByteOffset: exchangeNodesOffset + w * 4, as: Int32.self)
        }
    }

    /// Validates a header read from an object: magic, version, sizes, the job id, and the stored
    /// offsets against `lw_layout_compute`. `fileSize` is the object's size; `object` names it.
    static func validate(
        header h: lw_arena_header, jobID: String, fileSize: Int, object: String
    ) throws(LapwingError) -> ArenaLayout {
        guard h.magic != 0 else {
            throw LapwingError(
                .busy,
                "\(object): arena is not complete (still being created, or its creator died while creating it)")
        }
        guard h.magic == magic else {
            throw LapwingError(
                .invalidData,
                "\(object): not a Lapwing arena (magic 0x\(String(h.magic, radix: 16)), expected 0x\(String(magic, radix: 16)))"
            )
        }
        guard h.layout_version == version else {
            throw LapwingError(
                .invalidData, "\(object): arena layout version \(h.layout_version), this build reads \(version)")
        }
        guard Int(h.header_size) == MemoryLayout<lw_arena_header>.size else {
            throw LapwingError(
                .invalidData,
                "\(object): header size \(h.header_size), expected \(MemoryLayout<lw_arena_header>.size)")
        }
        let storedID = withUnsafeBytes(of: h.job_id) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard storedID == jobID else {
            throw LapwingError(.invalidData, "\(object): header names job '\(storedID)', expected '\(jobID)'")
        }
        var expected: ArenaLayout
        do throws(LapwingError) {
            expected = try compute(
                jobID: jobID, parameterCount: Int(clamping: h.param_count),
                replicaNodes: Array(repeating: -1, count: Int(h.replica_count)), workers: Int(h.worker_count),
                vectorsPerReplica: Int(h.vectors_per_replica), barriers: Int(h.barrier_count),
                exchangeVectorsPerWorker: Int(h.exchange_vectors))
        } catch {
            throw LapwingError(.invalidData, "\(object): header describes an impossible arena", detail: error.message)
        }
        guard expected.slotCount == Int(h.slot_count), expected.totalSize == Int(clamping: h.total_size),
            expected.slotsOffset == Int(clamping: h.slots_offset),
            expected.replicasOffset == Int(clamping: h.replicas_offset),
            expected.dataOffset == Int(clamping: h.data_offset),
            expected.vectorStride == Int(clamping: h.vector_stride),
            expected.barriersOffset == Int(clamping: h.barriers_offset),
            expected.barrierStride == Int(h.barrier_stride),
            expected.exchangeNodesOffset == Int(clamping: h.exchange_nodes_offset),
            expected.exchangeOffset == Int(clamping: h.exchange_offset)
        else {
            throw LapwingError(.invalidData, "\(object): header offsets disagree with layout version \(version)")
        }
        guard fileSize >= expected.totalSize else {
            throw LapwingError(
                .invalidData,
                "\(object): object is \(formatBytes(fileSize)) but its header says \(formatBytes(expected.totalSize))")
        }
        expected.creatorPID = h.creator_pid
        expected.createdRealtimeNanoseconds = h.created_realtime_ns
        return expected
    }

    /// Reads the replica table of a mapped arena into `replicaNodes`, checking the vector offsets,
    /// and the exchange node table into `exchangeNodes`.
    mutating func readReplicaTable(from base: UnsafeRawPointer, object: String) throws(LapwingError) {
        var nodes: [Int32] = []
        for r in 0..<replicaCount {
            let d = base.loadUnaligned(
                fromByteOffset: replicasOffset + r * MemoryLayout<lw_replica_desc>.size, as: lw_replica_desc.self)
            let ok = withUnsafeBytes(of: d.vector_offset) { offsets in
                (0..<vectorsPerReplica).allSatisfy {
                    offsets.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)
                        == UInt64(vectorOffset($0, ofReplica: r))
                }
            }
            guard ok, Int(d.vector_count) == vectorsPerReplica else {
                throw LapwingError(.invalidData, "\(object): replica table entry \(r) disagrees with the header")
            }
            nodes.append(d.node)
        }
        replicaNodes = nodes
        exchangeNodes = (0..<workerCount).map {
            base.loadUnaligned(fromByteOffset: exchangeNodesOffset + $0 * 4, as: Int32.self)
        }
    }
}
