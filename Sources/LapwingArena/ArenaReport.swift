import CLapwing
import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// What `lapwing-numa arena JOB-ID` shows of an attached arena: the header, every slot, per
/// replica its checksum and the NUMA node of its pages, every barrier's shape and counters, and
/// per worker its exchange vectors. Encoded as one JSON object by `--json`.
public struct ArenaReport: Sendable, Equatable, Codable {
    public struct Slot: Sendable, Equatable, Codable {
        public var index: Int
        /// "worker 3", "averager" or "host".
        public var role: String
        public var pid: Int32
        public var steps: UInt64
        public var samples: UInt64
        public var heartbeatNanoseconds: UInt64
    }

    public struct Replica: Sendable, Equatable, Codable {
        public var index: Int
        /// The node the replica was bound to at creation; -1 if none.
        public var intendedNode: Int32
        /// The node of all sampled pages, if they agree.
        public var node: Int32?
        /// The node of each sampled page (negative: -errno of the query).
        public var pageNodes: [Int32]
        /// The sum of the replica's d floats (vector 0), as Double, in index order.
        public var checksum: Double
        /// The checksum of each of its vectors, vector 0 (the replica) first.
        public var vectorChecksums: [Double]
    }

    public struct Barrier: Sendable, Equatable, Codable {
        public var index: Int
        /// M and N: a round completes when `quorum` of the `participants` have arrived.
        public var participants: Int
        public var quorum: Int
        /// The round now open.
        public var round: UInt32
        public var completedRounds: UInt64
        public var lateArrivals: UInt64
        /// Processes sleeping on it now.
        public var sleepers: Int
    }

    public struct Exchange: Sendable, Equatable, Codable {
        public var worker: Int
        /// The node its exchange vectors were bound to at creation; -1 if none.
        public var intendedNode: Int32
        /// The node of its first vector's first page (negative: -errno of the query).
        public var node: Int32
        /// The checksum of each of its exchange vectors.
        public var vectorChecksums: [Double]
    }

    public var segment: String
    public var path: String
    public var layout: ArenaLayout
    /// The state word, or "unknown(N)".
    public var state: String
    /// Bytes of one vector's data (d * 4) and of the whole object.
    public var vectorBytes: Int
    public var totalBytes: Int
    public var slots: [Slot]
    public var replicas: [Replica]
    public var barriers: [Barrier]
    /// Per worker, when the arena has exchange vectors; empty otherwise.
    public var exchange: [Exchange]
    /// The job's per-node copies of its training data, from its processes' numa_maps (nil:
    /// not looked for).
    public var dataCopies: [DataCopyPages]?
}

/// One `/dev/shm/lapwing.*` object, as `lapwing-numa arena --list` shows it.
public struct ArenaSegment: Sendable, Equatable, Codable {
    public var jobID: String
    public var path: String
    /// The object's size in bytes.
    public var size: Int
}

extension Arena {
    /// Reads everything `lapwing-numa arena` shows. Reads every vector (for the checksums), so the
    /// pages are present in this process when their nodes are queried.
    public func report(samplesPerReplica: Int = 8) throws(LapwingError) -> ArenaReport {
        let slots = (0..<layout.slotCount).map { i in
            let s = slot(i)
            let role =
                i < layout.workerCount ? "worker \(i)" : (i == layout.averagerSlot ? "averager" : "host")
            return ArenaReport.Slot(
                index: i, role: role, pid: s.pid, steps: s.steps, samples: s.samples,
                heartbeatNanoseconds: s.heartbeatNanoseconds)
        }
        var replicas: [ArenaReport.Replica] = []
        var sums: [[Double]] = []
        for r in 0..<layout.replicaCount {
            sums.append((0..<layout.vectorsPerReplica).map { checksum(ofReplica: r, vector: $0) })
        }
        let placement = try replicaNodeReport(samplesPerReplica: samplesPerReplica)
        for p in placement {
            replicas.append(
                ArenaReport.Replica(
                    index: p.replica, intendedNode: p.intendedNode, node: p.node, pageNodes: p.pageNodes,
                    checksum: sums[p.replica][0], vectorChecksums: sums[p.replica]))
        }
        let barriers = (0..<layout.barrierCount).map { i in
            let b = barrier(i)
            return ArenaReport.Barrier(
                index: i, participants: b.participants, quorum: b.quorum, round: b.round,
                completedRounds: b.completedRounds, lateArrivals: b.lateArrivals, sleepers: b.sleepers)
        }
        var exchange: [ArenaReport.Exchange] = []
        if layout.exchangeVectorsPerWorker > 0 {
            for w in 0..<layout.workerCount {
                let sums = (0..<layout.exchangeVectorsPerWorker).map { k in
                    exchangeVector(k, ofWorker: w).reduce(0.0) { $0 + Double($1) }
                }
                let first = UnsafeRawPointer(exchangeVector(0, ofWorker: w).baseAddress!)
                let node: Int32
                do throws(LapwingError) {
                    node = try nodeOfPage(first)
                } catch {
                    node = -Int32(error.errno ?? EIO)
                }
                exchange.append(
                    ArenaReport.Exchange(
                        worker: w, intendedNode: layout.exchangeNodes[w], node: node, vectorChecksums: sums))
            }
        }
        let stateText: String
        if let s = state {
            stateText = s.description
        } else {
            let raw = withUnsafeMapping { base, _ in
                base.load(fromByteOffset: MemoryLayout<lw_arena_header>.offset(of: \.state)!, as: UInt32.self)
            }
            stateText = "unknown(\(raw))"
        }
        return ArenaReport(
            segment: Arena.segmentName(jobID: jobID), path: Arena.segmentPath(jobID: jobID), layout: layout,
            state: stateText, vectorBytes: layout.parameterCount * MemoryLayout<Float>.size,
            totalBytes: layout.totalSize, slots: slots, replicas: replicas, barriers: barriers, exchange: exchange)
    }

    /// The `lapwing.*` objects in `directory` (by default /dev/shm), sorted by job id.
    ///
    /// The corresponding C functions are `opendir`, `readdir` and `stat`.
    public static func listSegments(in directory: String = "/dev/shm") throws(LapwingError) -> [ArenaSegment] {
        guard let dir = opendir(directory) else {
            throw LapwingError.system("opendir", errno: errno, object: directory)
        }
        defer { closedir(dir) }
        var found: [ArenaSegment] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard name.hasPrefix("lapwing.") else { continue }
            let path = "\(directory)/\(name)"
            var st = stat()
            guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            found.append(ArenaSegment(jobID: String(name.dropFirst("lapwing.".count)), path: path, size: Int(st.st_size)))
        }
        return found.sorted { $0.jobID < $1.jobID }
    }
}
