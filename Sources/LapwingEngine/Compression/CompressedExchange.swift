/// Compressed averaging of replicas, the form every replica-based algorithm shares when
/// `--compress` is given (Qsparse-local-SGD's form: Basu et al., NeurIPS 2019). The participants
/// keep a common anchor `a` (the last agreed average; the same bits everywhere). A round:
///
///     c_p = x_p - a                  the participant's contribution: everything it has not sent
///     Q_p = the codec's message of c_p, written into its exchange buffer
///     m   = (1/P) sum_p Q_p          read from the buffers only
///     a  += m;   x_p += m - Q_p
///
/// What a message does not carry (c_p - Q_p: quantization error, or the coordinates a sketch did
/// not send) stays in x_p - a and is part of the next round's contribution: error feedback, for
/// every compressor. The round leaves the sum of the replicas unchanged (P m = sum Q_p), so the
/// averaged model a job exports is the same as after an exact average; with exact messages
/// (Q_p = c_p) every replica ends at the exact average.

/// The worker side (`CompressionSite.workers`): each worker is a participant with its own
/// replica; it compresses its contribution into its own buffer, passes the barrier, and reads
/// every participant's buffer to form the same `a` and m as the others. Buffers alternate by
/// round parity, so one barrier per phase is enough. Bytes counted: the messages it reads from
/// the other participants' buffers (on another NUMA node: across nodes too); with exact
/// averaging the same count is each worker's slice read and written in the other replicas.
struct CompressedReplicaExchange {
    private(set) var barrier: BarrierPoint
    let rank: Int
    /// [parity][participant]
    let buffers: [[ExchangeBuffer]]
    var codec: any ExchangeCodec
    let x: UnsafeMutablePointer<Float>
    /// The common anchor and a scratch vector (contribution, then mean), private to the process.
    let anchor: UnsafeMutablePointer<Float>
    let scratch: UnsafeMutablePointer<Float>
    let count: Int
    let remote: [Bool]
    private(set) var rounds = 0

    /// `members`: the participating workers, one replica each (`rank`: this worker's position).
    init(_ c: WorkerContext, _ compression: Compression, barrier b: Int, members: [Int], rank: Int) {
        barrier = BarrierPoint(c.shared.barrier(b), participant: c.index)
        self.rank = rank
        count = c.parameterCount
        let first = c.shared.needs.exchangeVectorsPerWorker - 2
        buffers = (0..<2).map { parity in
            members.map { ExchangeBuffer(c.shared.exchange(first + parity, ofWorker: $0), count: c.parameterCount) }
        }
        codec = compression.codec(dimension: count, participants: members.count)
        x = c.shared.replica(c.replica)
        anchor = .allocate(capacity: count)
        anchor.update(from: x, count: count)
        scratch = .allocate(capacity: count)
        let me = c.exchangeNode(ofWorker: c.index)
        remote = members.map { me >= 0 && c.exchangeNode(ofWorker: $0) >= 0 && c.exchangeNode(ofWorker: $0) != me }
    }

    /// One round (`progress`: 0...1 of training); the bytes read from the others' buffers, or nil
    /// when the job is stopping.
    mutating func average(progress: Double) -> (bytes: Int, crossNode: Int)? {
        let all = buffers[rounds & 1]
        Vectors.difference(x, anchor, into: scratch, count: count)
        for phase in 0..<codec.phases {
            codec.prepare(phase: phase, all: all)
            codec.write(phase: phase, contribution: scratch, into: all[rank], participant: rank, progress: progress)
            guard barrier.pass() else { return nil }
        }
        codec.reduce(all: all)
        scratch.update(repeating: 0, count: count)
        codec.addSum(all, scale: 1 / Float(all.count), into: scratch)
        Vectors.add(scratch, into: anchor, count: count)
        Vectors.add(scratch, into: x, count: count)
        codec.addOwn(all[rank], scale: -1, into: x)
        rounds += 1
        var bytes = 0, crossNode = 0
        for (p, b) in all.enumerated() where p != rank {
            bytes += b.used
            if remote[p] { crossNode += b.used }
        }
        return (bytes, crossNode)
    }
}

/// The coordinator side (`CompressionSite.coordinator`): LAP-SGD's averager is every replica's
/// participant in turn. Per replica it snapshots c_r = x_r - a, writes the message into the
/// replica's buffer (on the replica's node), reduces the buffers, and adds m - Q_r into x_r in
/// place while the workers keep writing (their updates survive, as in the exact round). Bytes
/// counted: every message written and read once (on a node other than the averager's: across
/// nodes too), against the exact round's replicas read and written once.
struct CompressedAveragingRound: AveragingRound {
    var codec: any ExchangeCodec
    let buffers: [ExchangeBuffer]
    let replicas: [UnsafeMutablePointer<Float>]
    let contributions: [UnsafeMutablePointer<Float>]
    let anchor: UnsafeMutablePointer<Float>
    let mean: UnsafeMutablePointer<Float>
    let count: Int
    let remote: [Bool]
    /// Nice 5: about a quarter of a core against a worker at nice 0 (CFS weights 335 : 1024).
    /// Measured on lap-sgd with dq, 10 epochs, 2 workers on 2 cores: nice 0 gave 1340 rounds and
    /// 88.90%, nice 5 578 rounds and 88.39%, nice 10 204 rounds and 88.29%; the exact run 88.78%.
    let niceness: Int32 = 5

    init(_ c: CoordinatorContext, _ compression: Compression) {
        let r = c.replicaWorkers.count
        count = c.parameterCount
        let slot = c.shared.needs.vectorsPerReplica - 1
        buffers = (0..<r).map { ExchangeBuffer(c.shared.vector(slot, ofReplica: $0), count: c.parameterCount) }
        replicas = (0..<r).map { c.shared.replica($0) }
        codec = compression.codec(dimension: count, participants: r)
        contributions = (0..<r).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: c.parameterCount) }
        anchor = .allocate(capacity: count)
        mean = .allocate(capacity: count)
        let kernel = AveragingKernel(replicas: replicas, count: count)
        kernel.average(into: anchor)
        kernel.deallocate()
        remote = c.replicaNodes.map { $0 >= 0 && c.node >= 0 && $0 != c.node }
    }

    mutating func round(progress: Double) -> (bytes: Int, crossNode: Int) {
        for (x, c) in zip(replicas, contributions) { Vectors.difference(x, anchor, into: c, count: count) }
        for phase in 0..<codec.phases {
            codec.prepare(phase: phase, all: buffers)
            for p in buffers.indices {
                codec.write(phase: phase, contribution: contributions[p], into: buffers[p], participant: p, progress: progress)
            }
        }
        codec.reduce(all: buffers)
        mean.update(repeating: 0, count: count)
        codec.addSum(buffers, scale: 1 / Float(buffers.count), into: mean)
        Vectors.add(mean, into: anchor, count: count)
        var bytes = 0, crossNode = 0
        for (p, x) in replicas.enumerated() {
            Vectors.add(mean, into: x, count: count)
            codec.addOwn(buffers[p], scale: -1, into: x)
            bytes += 2 * buffers[p].used
            if remote[p] { crossNode += 2 * buffers[p].used }
        }
        return (bytes, crossNode)
    }

    func deallocate() {
        for c in contributions { c.deallocate() }
        anchor.deallocate()
        mean.deallocate()
    }
}

/// Element-wise vector loops, eight floats at a time.
enum Vectors {
    /// out = a - b.
    static func difference(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count {
            let d = UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self) - UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(out + i).storeBytes(of: d, as: SIMD8<Float>.self)
            i += 8
        }
        while i < count {
            out[i] = a[i] - b[i]
            i += 1
        }
    }

    /// y += x.
    static func add(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
        var i = 0
        while i + 8 <= count {
            let p = UnsafeMutableRawPointer(y + i)
            p.storeBytes(of: p.loadUnaligned(as: SIMD8<Float>.self) + UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self), as: SIMD8<Float>.self)
            i += 8
        }
        while i < count {
            y[i] += x[i]
            i += 1
        }
    }
}
