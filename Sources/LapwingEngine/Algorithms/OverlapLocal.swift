import LapwingCore
import LapwingJob

#if canImport(Glibc)
import Glibc
#endif

/// Overlap Local-SGD (Wang, Tantia, Ballas, Rabbat, "Overlap Local-SGD: An Algorithmic Approach
/// to Hide Communication Delays in Distributed SGD", ICASSP 2020; code JYWa/Overlap_Local_SGD,
/// distoptim/OverlapLocalSGD.py, whose defaults tau 2, alpha 0.6, beta 0.7 are the knobs'):
/// one replica per worker, local steps, and every tau steps each worker pulls its replica toward
/// an anchor z, x = (1 - alpha) x + alpha z. The next anchor is averaged in the background,
/// one round stale, with anchor momentum; no worker ever waits for it.
///
/// The rule, as the code has it. At round k (after each tau local steps), worker i:
///
///     x_i = (1 - alpha) x_i + alpha z_k
///     u_i = beta u_i + (z_k - x_i) / lr          (u_i = 0 before the first round)
///     contributes z_k - lr u_i to an all-reduce whose mean is z_{k+1}
///
/// and computes on while the all-reduce runs; z_1 is the initial model. As the u_i all follow
/// the same linear recurrence, z_{k+1} = z_k - lr U with U = mean of the u_i, so here one
/// buffer U does the all-reduce's work:
///
///     U = beta U + (z_k - mean_i x_i) / lr,   z_{k+1} = z_k - lr U
///
/// with x_i the replicas as pulled at round k. Who does what:
///
/// - **Worker i** (replica i) keeps z_k in its replica's state vector 2 (on its node). At its
///   round k it fuses the pull with a snapshot: one pass writes the pulled x_i into x_i and into
///   its snapshot s_i (vector 1), then publishes round k in its slot. z_1 is its own copy of the
///   initial replica, written before its first step. If z_k is not published yet when round k is
///   due (the coordinator is behind, or another worker has not reached round k-1), it does not
///   wait: it steps on and pulls at the first step after z_k appears.
/// - **The coordinator** (`AnchorAverager`) waits until every worker has published round k,
///   then reads the snapshots, updates U (replica 0's vector 3) and writes z_{k+1} into every
///   replica's vector 2, and publishes round k+1 in its slot. It never writes z while a worker
///   may read it: a worker reads z_k only after z_k is published and before it publishes its
///   round-k snapshot, and the coordinator writes z_{k+1} only after every round-k snapshot.
///   Likewise a worker writes snapshot k only once z_k is out, after the coordinator has read
///   every snapshot of round k-1.
///
/// Bytes: the coordinator counts its reads of the snapshots and its writes of the anchors, those
/// of replicas on another NUMA node than its own as crossing nodes; each worker counts its reads
/// of z at its pulls (its replica's own copy, on its node). U is the coordinator's private state
/// and is not counted.
///
/// **With `--compress`** (`qsgd`, `dq`) the coordinator reads nothing but compressed messages
/// and still no worker waits. Worker i keeps ŝ_i, what the coordinator knows of its snapshots
/// (a `CompressedMirror`: x_1 plus every message it sent); the coordinator keeps their mean S̄,
/// the anchor z as the workers have it, and the exact anchor ẑ of the rule:
///
///     worker i, round k:  z += D_k (k > 1);  x_i = (1 - alpha) x_i + alpha z
///                         Q_i = msg(x_i - ŝ_i);  ŝ_i += Q_i;  publish round k
///     coordinator:        S̄ += mean_i Q_i;  U = beta U + (z - S̄) / lr;  ẑ -= lr U
///                         D_{k+1} = msg(ẑ - z);  z += D_{k+1};  publish round k+1
///
/// Every message is a difference against what its reader holds, so what quantization misses
/// stays in x_i - ŝ_i or ẑ - z and goes out later (error feedback both ways); with exact
/// messages ŝ_i is the snapshot, S̄ = x̄ and ẑ = z: the rule above. The workers' z and the
/// coordinator's agree bit for bit (the same messages, added by the same code). Worker i's
/// first exchange buffer carries Q_i up, its second D down (one copy per replica, on its node);
/// each has one writer and one message in flight by the order above. z_1 = ẑ_1 = S̄ = x_1, the
/// initial model, which the coordinator copies once at its first round from replica 0's
/// anchor (worker 0's own copy; not counted). Bytes: the coordinator counts the W messages it
/// reads and the W copies of D it writes, each worker the D it reads at a pull: the count
/// above with each vector replaced by its message. A compressor of several phases (`sketch`)
/// is refused: a phase needs every worker's message of the one before, a barrier.
struct OverlapLocal: TrainingAlgorithm {
    static let name = "overlap-local"
    static let summary =
        "a replica per worker, local steps, every tau steps a pull toward an anchor averaged in the background one round stale, with anchor momentum (Wang et al. 2020)"
    static let knobs: [Knob] = [
        Knob("period", default: 2, range: 1...1_000_000, integer: true, help: "local steps between pulls toward the anchor (tau)"),
        Knob("pull", default: 0.6, range: 0...1, help: "pull toward the anchor, x = (1 - alpha) x + alpha z (alpha)"),
        Knob("anchor-momentum", default: 0.7, range: 0...0.999, help: "momentum of the anchor's update (beta)"),
    ]

    /// The replica's state vectors: its snapshot at the last pull, its copy of the anchor, and
    /// (replica 0's only) the anchor's momentum.
    static let snapshotVector = 1
    static let anchorVector = 2
    static let momentumVector = 3

    let workers: Int
    let period: Int
    let pull: Float
    let momentum: Float

    static let compressionSite: CompressionSite? = .workers

    init(spec: JobSpec, knobs: Knobs) throws(LapwingError) {
        if let r = spec.replicas, r != spec.workers {
            throw LapwingError(
                .invalidArgument, "--replicas \(r): overlap-local trains one replica per worker (\(spec.workers) with --workers \(spec.workers))")
        }
        if let c = try Compressors.resolve(spec), c.phases > 1 {
            throw LapwingError(
                .invalidArgument,
                "--compress \(c.config.name): overlap-local's workers never wait for each other, and \(c.config.name)'s round has \(c.phases) phases, each needing every worker's message of the one before (a barrier)",
                detail: "with overlap-local use --compress \(Compressors.all.filter { $0.phases == 1 }.map { $0.name }.joined(separator: " or "))")
        }
        workers = spec.workers
        period = knobs.int("period")
        pull = Float(knobs.double("pull"))
        momentum = Float(knobs.double("anchor-momentum"))
    }

    func replicaCount(numaNodes: Int) throws(LapwingError) -> Int { workers }

    func arenaNeeds(replicas: Int) -> ArenaNeeds { ArenaNeeds(vectorsPerReplica: 4) }

    func coordinator(_ c: CoordinatorContext) -> (any Coordinator)? { AnchorAverager(c, beta: momentum) }

    func workerStep(_ c: WorkerContext) -> any WorkerStep { OverlapStep(c, period: period, alpha: pull) }
}

/// A worker's local step, and every `period` steps the pull toward the anchor with its snapshot.
struct OverlapStep: WorkerStep {
    let x: UnsafeMutablePointer<Float>
    let snapshot: UnsafeMutablePointer<Float>
    let anchor: UnsafeMutablePointer<Float>
    let shared: SharedState
    let index: Int
    let coordinatorSlot: Int
    let count: Int
    let period: Int
    let alpha: Float
    var clock: AsynchronousClock
    /// The last round pulled and published.
    var round = 0
    var bytes = 0
    /// With `--compress`: the coordinator's view of the snapshots (sent up through `upBuffer`),
    /// and the buffer the anchor's messages come down through.
    var snapshotLink: CompressedMirror?
    let upBuffer: ExchangeBuffer?
    let downBuffer: ExchangeBuffer?

    init(_ c: WorkerContext, period: Int, alpha: Float) {
        x = c.shared.replica(c.replica)
        snapshot = c.shared.vector(OverlapLocal.snapshotVector, ofReplica: c.replica)
        anchor = c.shared.vector(OverlapLocal.anchorVector, ofReplica: c.replica)
        shared = c.shared
        index = c.index
        coordinatorSlot = c.spec.workers
        count = c.parameterCount
        self.period = period
        self.alpha = alpha
        clock = AsynchronousClock(c)
        if let compression = c.compression {
            let first = c.shared.needs.exchangeVectorsPerWorker - 2
            upBuffer = ExchangeBuffer(c.shared.exchange(first, ofWorker: c.index), count: count)
            downBuffer = ExchangeBuffer(c.shared.exchange(first + 1, ofWorker: c.index), count: count)
            snapshotLink = CompressedMirror(
                codec: compression.codec(dimension: count, participants: c.spec.workers + 1), participant: c.index,
                initial: x, count: count)
        } else {
            (upBuffer, downBuffer, snapshotLink) = (nil, nil, nil)
        }
    }

    @inline(__always)
    mutating func step(_ t: inout Trainer) -> Bool {
        // z_1: the replica as the job host initialised it (no one else writes it).
        if t.steps == 0 { anchor.update(from: x, count: count) }
        guard let n = clock.begin(t) else { return false }
        t.draw(n)
        let loss = t.gradient(at: x)
        guard loss.isFinite else {
            t.finish(samples: n, loss: loss)
            return false
        }
        t.apply(rate: clock.rate, to: x)
        // Round k is due after k * period local steps; z_k is out once the coordinator has
        // published round k (z_1, the worker's own copy, from the start).
        let next = round + 1
        if t.steps + 1 >= next * period && max(1, shared.publishedRound(slot: coordinatorSlot)) >= next {
            if let upBuffer, let downBuffer, snapshotLink != nil {
                if next > 1 {
                    snapshotLink!.codec.addOwn(downBuffer, scale: 1, into: anchor)
                    bytes += downBuffer.used
                }
                OverlapStep.pull(x, toward: anchor, snapshot: nil, alpha: alpha, count: count)
                _ = snapshotLink!.send(x, into: upBuffer, progress: min(1, clock.progress))
            } else {
                OverlapStep.pull(x, toward: anchor, snapshot: snapshot, alpha: alpha, count: count)
                bytes += count * MemoryLayout<Float>.stride
            }
            round = next
            shared.publishRound(slot: index, next)
            shared.recordExchange(slot: index, bytes: bytes, crossNode: 0)
        }
        t.finish(samples: n, loss: loss)
        return true
    }

    /// x = (1 - alpha) x + alpha z, written into x and (if given) into the snapshot s in one
    /// pass. With alpha = 0 every x is kept bit for bit (1 * x + 0 * z, z finite).
    static func pull(
        _ x: UnsafeMutablePointer<Float>, toward z: UnsafePointer<Float>, snapshot s: UnsafeMutablePointer<Float>?,
        alpha: Float, count: Int
    ) {
        let keep = 1 - alpha
        let body = count & ~7
        let k8 = SIMD8<Float>(repeating: keep), a8 = SIMD8<Float>(repeating: alpha)
        var j = 0
        while j < body {
            let xv = UnsafeRawPointer(x + j).loadUnaligned(as: SIMD8<Float>.self)
            let zv = UnsafeRawPointer(z + j).loadUnaligned(as: SIMD8<Float>.self)
            let p = xv * k8 + a8 * zv
            UnsafeMutableRawPointer(x + j).storeBytes(of: p, as: SIMD8<Float>.self)
            if let s { UnsafeMutableRawPointer(s + j).storeBytes(of: p, as: SIMD8<Float>.self) }
            j += 8
        }
        for i in body..<count {
            let p = x[i] * keep + alpha * z[i]
            x[i] = p
            s?[i] = p
        }
    }
}

/// overlap-local's coordinator: for each round k, once every worker has published its round-k
/// snapshot, the anchor of round k+1 (`OverlapLocal`'s rule) into every replica's anchor vector;
/// between rounds it sleeps briefly instead of spinning.
struct AnchorAverager: Coordinator {
    let role = "anchor"
    let shared: SharedState
    let workers: Int
    let replicas: Int
    let totalSamples: Int
    let slot: Int
    let count: Int
    let beta: Float
    let schedule: LearningRateSchedule
    /// Bytes of one round (snapshots read, anchors written) and those on another node.
    let bytesPerRound: Int
    let crossNodeBytesPerRound: Int
    /// The context, for the compressed round (made at the first round, from z_1).
    let context: CoordinatorContext

    init(_ c: CoordinatorContext, beta: Float) {
        shared = c.shared
        workers = c.spec.workers
        replicas = c.replicaWorkers.count
        totalSamples = c.totalSamples
        slot = c.slot
        count = c.parameterCount
        self.beta = beta
        schedule = c.spec.schedule
        let vector = c.parameterCount * MemoryLayout<Float>.stride
        bytesPerRound = 2 * c.replicaWorkers.count * vector
        let remote = c.replicaNodes.filter { $0 >= 0 && c.node >= 0 && $0 != c.node }.count
        crossNodeBytesPerRound = 2 * remote * vector
        context = c
    }

    mutating func run() {
        let snapshots = (0..<replicas).map { UnsafePointer(shared.vector(OverlapLocal.snapshotVector, ofReplica: $0)) }
        let anchors = (0..<replicas).map { shared.vector(OverlapLocal.anchorVector, ofReplica: $0) }
        let u = shared.vector(OverlapLocal.momentumVector, ofReplica: 0)
        u.update(repeating: 0, count: count)
        var round = 1
        var seconds = 0.0
        var (bytes, crossNode) = (0, 0)
        var compressed: CompressedAnchorRound? = nil
        while shared.waitWhilePaused() {
            let done = shared.totalSamples()
            if done >= totalSamples { break }
            guard (0..<workers).allSatisfy({ shared.publishedRound(slot: $0) >= round }) else {
                var ts = timespec(tv_sec: 0, tv_nsec: 50_000)
                nanosleep(&ts, nil)
                continue
            }
            let t0 = monotonicSeconds()
            let progress = Double(done) / Double(totalSamples)
            let lr = schedule.rate(at: progress)
            if let compression = context.compression {
                if compressed == nil { compressed = CompressedAnchorRound(context, compression, initial: anchors[0]) }
                let moved = compressed!.round(momentum: u, lr: lr, beta: beta, progress: progress)
                bytes += moved.bytes
                crossNode += moved.crossNode
            } else {
                AnchorAverager.nextAnchor(anchors: anchors, momentum: u, snapshots: snapshots, count: count, lr: lr, beta: beta)
                bytes += bytesPerRound
                crossNode += crossNodeBytesPerRound
            }
            shared.publishRound(slot: slot, round + 1)
            seconds += monotonicSeconds() - t0
            shared.recordRounds(slot: slot, rounds: round, seconds: seconds)
            shared.recordExchange(slot: slot, bytes: bytes, crossNode: crossNode)
            round += 1
        }
    }

    /// One round of the anchor: with z = anchors[0] (every anchor holds z_k) and x̄ the mean of
    /// the snapshots, U = beta U + (z - x̄) / lr and z_{k+1} = z - lr U, written into every
    /// anchor. A learning rate of 0 (the end of a cosine schedule) is taken as 1e-12.
    static func nextAnchor(
        anchors: [UnsafeMutablePointer<Float>], momentum u: UnsafeMutablePointer<Float>,
        snapshots: [UnsafePointer<Float>], count: Int, lr rate: Float, beta: Float
    ) {
        let r = snapshots.count
        let lr = max(rate, 1e-12)
        let inverse = 1 / Float(r)
        let body = count & ~7
        let b8 = SIMD8<Float>(repeating: beta), lr8 = SIMD8<Float>(repeating: lr), inv8 = SIMD8<Float>(repeating: inverse)
        let z0 = anchors[0]
        var j = 0
        while j < body {
            var sum = UnsafeRawPointer(snapshots[0] + j).loadUnaligned(as: SIMD8<Float>.self)
            for k in 1..<r { sum += UnsafeRawPointer(snapshots[k] + j).loadUnaligned(as: SIMD8<Float>.self) }
            let z = UnsafeRawPointer(z0 + j).loadUnaligned(as: SIMD8<Float>.self)
            let uj = b8 * UnsafeRawPointer(u + j).loadUnaligned(as: SIMD8<Float>.self) + (z - sum * inv8) / lr8
            UnsafeMutableRawPointer(u + j).storeBytes(of: uj, as: SIMD8<Float>.self)
            let next = z - lr8 * uj
            for a in anchors { UnsafeMutableRawPointer(a + j).storeBytes(of: next, as: SIMD8<Float>.self) }
            j += 8
        }
        for i in body..<count {
            var sum = snapshots[0][i]
            for k in 1..<r { sum += snapshots[k][i] }
            let z = z0[i]
            let ui = beta * u[i] + (z - sum * inverse) / lr
            u[i] = ui
            let next = z - lr * ui
            for a in anchors { a[i] = next }
        }
    }
}

/// overlap-local's coordinator round with `--compress` (see `OverlapLocal`): the workers'
/// messages into S̄, the rule into the exact anchor ẑ, and ẑ - z sent down to every replica.
struct CompressedAnchorRound {
    /// Each worker's buffers: its messages up, the anchor's down.
    let up: [ExchangeBuffer]
    let down: [ExchangeBuffer]
    let reader: any ExchangeCodec
    /// z as the workers have it (the mirror), sent from ẑ.
    var anchor: CompressedMirror
    let exact: UnsafeMutablePointer<Float>
    let mean: UnsafeMutablePointer<Float>
    let remote: [Bool]
    let count: Int

    /// `initial`: z_1, the initial model.
    init(_ c: CoordinatorContext, _ compression: Compression, initial: UnsafePointer<Float>) {
        let (w, d) = (c.spec.workers, c.parameterCount)
        count = d
        let first = c.shared.needs.exchangeVectorsPerWorker - 2
        up = (0..<w).map { ExchangeBuffer(c.shared.exchange(first, ofWorker: $0), count: d) }
        down = (0..<w).map { ExchangeBuffer(c.shared.exchange(first + 1, ofWorker: $0), count: d) }
        reader = compression.codec(dimension: d, participants: w + 1)
        anchor = CompressedMirror(codec: compression.codec(dimension: d, participants: w + 1), participant: w, initial: initial, count: d)
        exact = .allocate(capacity: d)
        exact.initialize(from: initial, count: d)
        mean = .allocate(capacity: d)
        mean.initialize(from: initial, count: d)
        remote = (0..<w).map { worker in
            let r = c.replicaWorkers.firstIndex { $0.contains(worker) } ?? 0
            let node = r < c.replicaNodes.count ? c.replicaNodes[r] : -1
            return node >= 0 && c.node >= 0 && node != c.node
        }
    }

    /// One round, once every worker has published its message; the bytes read and written.
    mutating func round(momentum u: UnsafeMutablePointer<Float>, lr rate: Float, beta: Float, progress: Double) -> (bytes: Int, crossNode: Int) {
        reader.addSum(up, scale: 1 / Float(up.count), into: mean)
        let lr = max(rate, 1e-12)
        let (z, s, e) = (anchor.mirror, mean, exact)
        for i in 0..<count {
            let ui = beta * u[i] + (z[i] - s[i]) / lr
            u[i] = ui
            e[i] -= lr * ui
        }
        let n = anchor.send(exact, into: down[0], progress: progress)
        for b in down.dropFirst() { b.base.copyMemory(from: down[0].base, byteCount: n) }
        var bytes = 0, crossNode = 0
        for (w, b) in up.enumerated() {
            bytes += b.used + n
            if remote[w] { crossNode += b.used + n }
        }
        return (bytes, crossNode)
    }
}
