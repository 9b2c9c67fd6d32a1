import LapwingArena
import LapwingCore
import LapwingJob

/// Building blocks of the synchronous algorithms (minibatch, local SGD, Hier-AVG, SlowMo,
/// backup workers), shared so that their rules can be compared exactly:
///
/// - **One shared order.** Every worker draws the same seeded order over the rows
///   (`SynchronousPlan.trainerShape`), and at global step t worker w takes positions
///   w*B..<(w+1)*B of the next W*B rows: W workers at batch B see the samples one worker at
///   batch W*B would, step by step.
/// - **A fixed number of steps.** Every worker takes `steps` steps (the budget in samples over
///   W*B, rounded up), so no barrier waits for a worker that has stopped; the learning rate
///   follows the global step.
/// - **Samples are booked after the step's exchange.** The host ends the job once the workers'
///   samples reach the budget; booking them only after a step's last barrier means the final
///   average or update is complete by then.
/// - **Slices.** Reductions are split over the workers: worker w reduces and writes
///   parameters `slice(w)` (64-byte aligned blocks), so a round costs each worker d/W floats
///   per replica, in a fixed order (worker 0's contribution first), whatever the arrival order.
struct SynchronousPlan {
    let index: Int
    let workers: Int
    let batch: Int
    /// Steps every worker takes.
    let steps: Int
    let parameterCount: Int
    let schedule: LearningRateSchedule

    /// The order stream every synchronous worker shares.
    static let sharedOrderStream: UInt64 = 999

    init(_ c: WorkerContext) {
        index = c.index
        workers = c.spec.workers
        batch = c.spec.batch
        let perStep = Double(workers * batch)
        steps = max(1, Int((Double(c.totalSamples) / perStep).rounded(.up)))
        parameterCount = c.parameterCount
        schedule = c.spec.schedule
    }

    /// Every worker draws the shared order, W*B rows a step.
    static func trainerShape(_ c: WorkerContext) -> TrainerShape {
        TrainerShape(orderStream: sharedOrderStream, fuseMomentum: false)
    }

    /// Draws this worker's part of the global step's rows: positions index*B..<(index+1)*B of the
    /// next W*B rows of the shared order.
    func draw(_ t: inout Trainer) {
        t.draw(workers * t.batch, keep: index * t.batch..<(index + 1) * t.batch)
    }

    /// The learning rate at global step `step` (0-based).
    func rate(at step: Int) -> Float { schedule.rate(at: Double(step) / Double(steps)) }

    /// The parameters worker `w` reduces: contiguous, 16-float aligned, about d/W each.
    func slice(_ w: Int) -> Range<Int> { Self.slice(w, of: workers, count: parameterCount) }

    /// `alignment`: slices start at multiples of it (16 floats; a compressed exchange asks for
    /// its codec's block).
    static func slice(_ w: Int, of n: Int, count d: Int, alignment: Int = 16) -> Range<Int> {
        let blocks = (d + alignment - 1) / alignment
        let lo = min(d, blocks * w / n * alignment)
        let hi = min(d, blocks * (w + 1) / n * alignment)
        return lo..<hi
    }
}

/// One barrier of the arena as a worker uses it: it keeps the round it is in, arrives and
/// waits, and says whether the job is still going (false: the job is stopping, leave).
struct BarrierPoint {
    let barrier: ArenaBarrier
    let participant: Int
    private(set) var round: UInt32

    init(_ barrier: ArenaBarrier, participant: Int) {
        self.barrier = barrier
        self.participant = participant
        round = barrier.round
    }

    /// Arrives for the current round and waits for it to complete; false if the job is stopping.
    mutating func pass(whenComplete: (BarrierArrivals) -> Void = { _ in }) -> Bool {
        switch barrier.arriveAndWait(round: round, participant: participant, whenComplete: whenComplete) {
        case .counted(_, _, _, let next), .late(_, let next):
            round = next
            return true
        case .stopped:
            return false
        }
    }
}

/// A `BarrierPoint` that, when `timed`, adds the seconds spent in it (arrival to completion)
/// to `waited`: worker 0's record of a synchronous algorithm's barrier cost.
struct TimedBarrier {
    var point: BarrierPoint
    let timed: Bool
    private(set) var waited = 0.0

    init(_ point: BarrierPoint, timed: Bool) {
        self.point = point
        self.timed = timed
    }

    /// Arrives and waits; false if the job is stopping.
    mutating func pass() -> Bool {
        guard timed else { return point.pass() }
        let t0 = monotonicSeconds()
        let ok = point.pass()
        waited += monotonicSeconds() - t0
        return ok
    }
}

/// Exact averages over replicas, a slice at a time (the synchronous algorithms' reduction).
enum SliceAverage {
    /// Writes the mean of `sources` over `range` into every pointer of `targets` (which may be
    /// the sources themselves); sources are summed in the order given.
    static func average(
        _ sources: [UnsafeMutablePointer<Float>], into targets: [UnsafeMutablePointer<Float>], range: Range<Int>
    ) {
        guard !range.isEmpty, !sources.isEmpty else { return }
        let scale = 1 / Float(sources.count)
        var i = range.lowerBound
        let end = range.upperBound
        while i + 8 <= end {
            var s = UnsafeRawPointer(sources[0] + i).loadUnaligned(as: SIMD8<Float>.self)
            for k in 1..<sources.count { s += UnsafeRawPointer(sources[k] + i).loadUnaligned(as: SIMD8<Float>.self) }
            s *= scale
            for t in targets { UnsafeMutableRawPointer(t + i).storeBytes(of: s, as: SIMD8<Float>.self) }
            i += 8
        }
        while i < end {
            var s = sources[0][i]
            for k in 1..<sources.count { s += sources[k][i] }
            s *= scale
            for t in targets { t[i] = s }
            i += 1
        }
    }
}
