import Atomics
import CLapwing
import LapwingCore

/// One participant's side of a barrier exercise, run by several processes on one barrier of an
/// arena: what the barrier tests (`lapwing-numa arena --barrier-drill`) and `lapwing-bench barrier`
/// run. Participant p uses worker p's exchange vectors.
///
/// Each round r it writes r + 1 into the first and last float of its exchange vector 0 (plain
/// stores, as a gradient would be written), arrives as participant p, and once the round is
/// complete checks what the barrier promises:
/// - the arrival that completes a round finds every counted participant's vector holding r + 1
///   (they have arrived and cannot have moved on);
/// - with a plain barrier (quorum = participants), every participant's vector holds r + 1 or
///   r + 2 (it may have started the next round) after the round.
///
/// Every round it is counted in, it sets float r of its exchange vector 1 (when it has one and
/// r < d) to 1: a tally the caller can sum over participants, independently of the barrier, to see
/// that each round counted exactly `quorum` arrivals.
///
/// It runs until the barrier's round reaches `rounds`, or the job stops.
public struct BarrierDrill: Sendable {
    public var barrier: Int
    public var participant: Int
    public var rounds: Int
    public var spins: Int
    /// Off: only the barrier (no contributions, checks or tally), for timing.
    public var check: Bool

    public init(barrier: Int, participant: Int, rounds: Int, spins: Int = ArenaBarrier.defaultSpins, check: Bool = true) {
        self.barrier = barrier
        self.participant = participant
        self.rounds = rounds
        self.spins = spins
        self.check = check
    }

    /// What one participant saw.
    public struct Result: Sendable, Codable, Equatable {
        public var participant: Int
        /// Rounds in which its arrival counted.
        public var counted: Int
        /// Arrivals that came too late to count.
        public var late: Int
        /// Rounds its arrival completed.
        public var completed: Int
        /// Broken promises seen (0 when the barrier works), and the first of them in words.
        public var mismatches: Int
        public var firstMismatch: String?
        /// Whether it ended because the job was stopping.
        public var stopped: Bool
        /// CLOCK_MONOTONIC ns from the end of its first round to its last (the first round waits
        /// for the others to start).
        public var nanoseconds: UInt64
    }

    /// Runs the drill in this process. Throws `.invalidArgument` when the arena cannot hold it
    /// (no such barrier, participant or exchange vector; more rounds than floats can count).
    public func run(in arena: borrowing Arena) throws(LapwingError) -> Result {
        let layout = arena.layout
        let what = "barrier drill on \(Arena.segmentPath(jobID: layout.jobID))"
        guard barrier >= 0 && barrier < layout.barrierCount else {
            throw LapwingError(.invalidArgument, "\(what): no barrier \(barrier) (the arena has \(layout.barrierCount))")
        }
        let b = arena.barrier(barrier)
        let m = b.participants
        guard participant >= 0 && participant < min(m, layout.workerCount) else {
            throw LapwingError(
                .invalidArgument,
                "\(what): participant \(participant) out of 0..<\(min(m, layout.workerCount)) (barrier \(barrier) has \(m) participants, the arena \(layout.workerCount) workers)"
            )
        }
        guard rounds > 0, rounds < 1 << 24 else {
            throw LapwingError(.invalidArgument, "\(what): rounds must be in 1..<\(1 << 24), not \(rounds)")
        }
        guard !check || layout.exchangeVectorsPerWorker >= 1 else {
            throw LapwingError(.invalidArgument, "\(what): checking needs an exchange vector per worker, the arena has none")
        }
        let d = layout.parameterCount
        let mine = check ? arena.exchangeVector(0, ofWorker: participant) : UnsafeMutableBufferPointer(start: nil, count: 0)
        let vectors = check ? (0..<m).map { arena.exchangeVector(0, ofWorker: $0) } : []
        let tally = check && layout.exchangeVectorsPerWorker >= 2 ? arena.exchangeVector(1, ofWorker: participant) : nil
        let plain = b.quorum == m
        var result = Result(
            participant: participant, counted: 0, late: 0, completed: 0, mismatches: 0, firstMismatch: nil,
            stopped: false, nanoseconds: 0)
        func mismatch(_ text: @autoclosure () -> String) {
            if result.mismatches == 0 { result.firstMismatch = text() }
            result.mismatches += 1
        }
        var round = b.round
        var started: UInt64 = 0
        while Int(round) < rounds {
            let value = Float(round + 1)
            if check {
                mine[0] = value
                mine[d - 1] = value
            }
            let outcome = b.arriveAndWait(round: round, participant: participant, spins: spins) { arrivals in
                guard check else { return }
                var seen = Set<Int>()
                for q in arrivals {
                    guard q < vectors.count else {
                        mismatch("round \(round): participant \(q) counted, but the barrier has \(vectors.count)")
                        continue
                    }
                    if !seen.insert(q).inserted { mismatch("round \(round): participant \(q) counted twice") }
                    let v = vectors[q]
                    if v[0] != value || v[d - 1] != value {
                        mismatch("round \(round): counted participant \(q) holds \(v[0]), \(v[d - 1]) at completion, not \(value)")
                    }
                }
            }
            switch outcome {
            case .stopped:
                result.stopped = true
                result.nanoseconds = started == 0 ? 0 : monotonicNanoseconds() - started
                return result
            case .late(_, let next):
                result.late += 1
                round = next
            case .counted(let r, _, let completed, let next):
                result.counted += 1
                if completed { result.completed += 1 }
                if let tally, Int(r) < d { tally[Int(r)] = 1 }
                if check && plain {
                    for (q, v) in vectors.enumerated() {
                        let (first, last) = (v[0], v[d - 1])
                        if !(first == value || first == value + 1) || !(last == value || last == value + 1) {
                            mismatch("round \(r): participant \(q) holds \(first), \(last) after the round, not \(value) or \(value + 1)")
                        }
                    }
                }
                round = next
            }
            if started == 0 { started = monotonicNanoseconds() }
        }
        result.nanoseconds = monotonicNanoseconds() - started
        return result
    }
}
