import Atomics
import CLapwing

/// A view of one barrier in an arena (`struct lw_barrier`, one cache line, followed by its arrival
/// log): the synchronisation point of the synchronous algorithms (minibatch, local SGD, hier-avg,
/// SlowMo, backup workers), shared by forked processes through the `MAP_SHARED` mapping.
///
/// Rounds are numbered (a 32-bit number that wraps). A participant arrives *for* a round, the one
/// its contribution belongs to, and the round completes when `quorum` arrivals have been counted:
/// - `quorum == participants`: a plain barrier; every arrival counts, none is late.
/// - `quorum < participants`: first N of M (backup workers). Arrivals are counted in the order
///   they come (their *ticket*, 0..<N); one that comes after the round had its N is **late**: it
///   did not count, and whatever it contributed must be dropped.
///
/// The arrival that completes the round runs `whenComplete` before anyone leaves, with the
/// counted participants in arrival order (so backup workers apply exactly those N gradients);
/// then it advances the round (a releasing store: everything written before any counted
/// arrival, and in `whenComplete`, is visible to every process that sees the new round) and
/// wakes the sleepers with one `FUTEX_WAKE`.
///
/// Waiting spins first (a bounded number of polls with a CPU pause hint, yielding the CPU every
/// 64 polls so that, with more processes than cores, the one that is late gets to run), then
/// sleeps in `FUTEX_WAIT` on the round word for at most 50 ms at a time. Before each sleep and
/// after each wake-up it looks at the arena's state word: once the job is stopping, waiting ends
/// with `.stopped` (at once when the host's ``Arena/setState(_:)`` wakes the sleepers, within
/// 50 ms otherwise), so a worker never hangs on a barrier that will not complete.
///
/// The view holds raw pointers: it is valid only while the `Arena` it came from is alive.
public struct ArenaBarrier {
    /// The barrier's index in the arena.
    public let index: Int
    /// The address of its `struct lw_barrier` (64-byte aligned).
    public let address: UnsafeMutableRawPointer
    private let stateWordAddress: UnsafeMutableRawPointer
    /// How many entries its arrival log has: the arena's slot count, the most participants.
    public let capacity: Int

    /// Polls of the round word before the first sleep.
    public static let defaultSpins = 4096
    /// The longest single sleep; after it the waiter looks at the job's state again.
    public static let sleepNanoseconds: UInt64 = 50_000_000

    init(index: Int, address: UnsafeMutableRawPointer, stateWord: UnsafeMutableRawPointer, capacity: Int) {
        self.index = index
        self.address = address
        self.stateWordAddress = stateWord
        self.capacity = capacity
    }

    // MARK: Words

    private func word64(_ field: KeyPath<lw_barrier, UInt64>) -> UnsafeAtomic<UInt64> {
        let p = address + MemoryLayout<lw_barrier>.offset(of: field)!
        return UnsafeAtomic(at: p.assumingMemoryBound(to: UInt64.AtomicRepresentation.self))
    }

    private func word32(_ field: KeyPath<lw_barrier, UInt32>) -> UnsafeAtomic<UInt32> {
        let p = address + MemoryLayout<lw_barrier>.offset(of: field)!
        return UnsafeAtomic(at: p.assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
    }

    private var roundAddress: UnsafeMutablePointer<UInt32> {
        (address + MemoryLayout<lw_barrier>.offset(of: \lw_barrier.round)!).assumingMemoryBound(to: UInt32.self)
    }

    private func logEntry(_ i: Int) -> UnsafeAtomic<UInt32> {
        let p = address + MemoryLayout<lw_barrier>.size + i * 4
        return UnsafeAtomic(at: p.assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
    }

    private var isStopping: Bool {
        UnsafeAtomic<UInt32>(at: stateWordAddress.assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
            .load(ordering: .acquiring) == UInt32(LW_STATE_STOPPING.rawValue)
    }

    // MARK: Shape and counters

    /// M: the processes that take part (relaxed load).
    public var participants: Int { Int(word32(\.participants).load(ordering: .relaxed)) }
    /// N: the arrivals that complete a round (relaxed load).
    public var quorum: Int { Int(word32(\.quorum).load(ordering: .relaxed)) }
    /// The current round: the one a participant that is not behind arrives for (acquiring load).
    public var round: UInt32 { word32(\.round).load(ordering: .acquiring) }
    /// Rounds completed since the arena was created (relaxed load).
    public var completedRounds: UInt64 { word64(\.completed).load(ordering: .relaxed) }
    /// Arrivals that were late, and dropped, since the arena was created (relaxed load).
    public var lateArrivals: UInt64 { word64(\.late).load(ordering: .relaxed) }
    /// Processes sleeping on the barrier now, or about to (relaxed load).
    public var sleepers: Int { Int(word32(\.sleepers).load(ordering: .relaxed)) }

    /// Sets the barrier's shape: `participants` processes (1...``capacity``), of which `quorum`
    /// (1...participants; nil: all) complete a round. The round number is kept.
    ///
    /// Call it only while no process is arriving at or waiting on this barrier: in the job host
    /// before it forks the workers, or between phases that another barrier separates. A new
    /// arena's barriers have every worker as participant and quorum.
    public func configure(participants: Int, quorum: Int? = nil) {
        precondition(
            participants >= 1 && participants <= capacity,
            "barrier \(index): participants \(participants) out of 1...\(capacity)")
        let n = quorum ?? participants
        precondition(n >= 1 && n <= participants, "barrier \(index): quorum \(n) out of 1...\(participants)")
        word32(\.participants).store(UInt32(participants), ordering: .relaxed)
        word32(\.quorum).store(UInt32(n), ordering: .relaxed)
        word32(\.published).store(0, ordering: .relaxed)
        let r = word32(\.round).load(ordering: .relaxed)
        word64(\.state).store(UInt64(r) << 32, ordering: .releasing)
    }

    // MARK: Arriving and waiting

    /// What one arrival got (``arrive(round:participant:whenComplete:)``).
    public enum Arrival: Equatable, Sendable {
        /// Counted in `round` as its `ticket`-th arrival (0..<quorum); `completed`: this arrival
        /// completed the round (and ran `whenComplete`).
        case counted(round: UInt32, ticket: Int, completed: Bool)
        /// `round` had its quorum before this arrival: it did not count.
        case late(round: UInt32)
        /// The job is stopping: nothing was counted.
        case stopped
    }

    /// How a wait ended (``wait(forRoundAfter:spins:)``).
    public enum Passage: Equatable, Sendable {
        /// The round waited for is complete; `current` is the round now open (the one to work on).
        case passed(current: UInt32)
        /// The job is stopping.
        case stopped
    }

    /// How an arrival and its wait ended (``arriveAndWait(round:participant:spins:whenComplete:)``).
    public enum Outcome: Equatable, Sendable {
        /// `round` completed with this arrival counted as its `ticket`-th (0..<quorum); `completed`:
        /// this arrival completed it. Work on round `next` (round + 1, or later if this participant
        /// fell behind while it waited in a first-N-of-M barrier).
        case counted(round: UInt32, ticket: Int, completed: Bool, next: UInt32)
        /// `round` had its quorum before this arrival: drop the contribution; work on round `next`.
        case late(round: UInt32, next: UInt32)
        /// The job is stopping: leave.
        case stopped
    }

    /// Arrives for `round` as `participant` (the process's slot index, 0..<``capacity``, recorded
    /// in the arrival log) without waiting. If this arrival completes the round, `whenComplete`
    /// runs here, with the counted participants in arrival order, before the round advances.
    ///
    /// `round` is the round the contribution belongs to: the current ``round`` or, for a
    /// participant that fell behind in a first-N-of-M barrier, an earlier one (then it is late).
    /// A round that has not opened yet is a programming error and traps.
    ///
    /// The corresponding C call is `syscall(SYS_futex, FUTEX_WAKE)`, made by the completing
    /// arrival when a process sleeps on the barrier.
    public func arrive(
        round: UInt32, participant: Int, whenComplete: (BarrierArrivals) -> Void = { _ in }
    ) -> Arrival {
        precondition(
            participant >= 0 && participant < capacity,
            "barrier \(index): participant \(participant) out of 0..<\(capacity)")
        if isStopping { return .stopped }
        let quorum = word32(\.quorum).load(ordering: .relaxed)
        let state = word64(\.state)
        var s = state.load(ordering: .acquiring)
        var ticket: UInt32
        while true {
            let open = UInt32(truncatingIfNeeded: s >> 32)
            ticket = UInt32(truncatingIfNeeded: s)
            if open != round || ticket >= quorum {
                precondition(
                    ArenaBarrier.isAfter(open, round) || open == round,
                    "barrier \(index): arrival for round \(round), but round \(open) is the newest open")
                word64(\.late).wrappingIncrement(ordering: .relaxed)
                return .late(round: round)
            }
            let (exchanged, original) = state.compareExchange(
                expected: s, desired: s + 1, ordering: .acquiringAndReleasing)
            if exchanged { break }
            s = original
        }
        logEntry(Int(ticket)).store(UInt32(participant), ordering: .relaxed)
        // The last to publish its log entry completes the round: by then all `quorum` entries are written.
        let published = word32(\.published).loadThenWrappingIncrement(ordering: .acquiringAndReleasing) + 1
        guard published == quorum else { return .counted(round: round, ticket: Int(ticket), completed: false) }
        whenComplete(BarrierArrivals(log: address + MemoryLayout<lw_barrier>.size, count: Int(quorum)))
        word64(\.completed).wrappingIncrement(ordering: .relaxed)
        word32(\.published).store(0, ordering: .relaxed)
        word64(\.state).store(UInt64(round &+ 1) << 32, ordering: .releasing)
        // Sequentially consistent with the waiters' `sleepers` increment and re-check: either this
        // sees their increment (and wakes them), or they see the new round (and do not sleep).
        word32(\.round).store(round &+ 1, ordering: .sequentiallyConsistent)
        if word32(\.sleepers).load(ordering: .sequentiallyConsistent) > 0 {
            _ = lw_futex_wake(roundAddress, Int32.max)
        }
        return .counted(round: round, ticket: Int(ticket), completed: true)
    }

    /// Waits until `round` is complete (the current round is past it), or the job is stopping.
    /// Spins `spins` polls first (yielding the CPU every 64), then sleeps in `FUTEX_WAIT`, 50 ms at
    /// most at a time, looking at the job's state before each sleep.
    ///
    /// The corresponding C call is `syscall(SYS_futex, FUTEX_WAIT)`.
    public func wait(forRoundAfter round: UInt32, spins: Int = ArenaBarrier.defaultSpins) -> Passage {
        let word = word32(\.round)
        var i = 0
        while i < spins {
            let current = word.load(ordering: .acquiring)
            if ArenaBarrier.isAfter(current, round) { return .passed(current: current) }
            i += 1
            if i & 63 == 0 {
                if isStopping { return .stopped }
                _ = lw_yield()
            } else {
                lw_cpu_pause()
            }
        }
        let sleepers = word32(\.sleepers)
        while true {
            sleepers.wrappingIncrement(ordering: .sequentiallyConsistent)
            let current = word.load(ordering: .sequentiallyConsistent)
            if ArenaBarrier.isAfter(current, round) {
                sleepers.wrappingDecrement(ordering: .relaxed)
                return .passed(current: current)
            }
            if isStopping {
                sleepers.wrappingDecrement(ordering: .relaxed)
                return .stopped
            }
            // Returns at once (-EAGAIN) if the round moved since the load above.
            _ = lw_futex_wait(roundAddress, current, ArenaBarrier.sleepNanoseconds)
            sleepers.wrappingDecrement(ordering: .relaxed)
        }
    }

    /// Arrives for `round` as `participant` and waits until the round is complete (see
    /// ``arrive(round:participant:whenComplete:)`` and ``wait(forRoundAfter:spins:)``). A late
    /// arrival waits too, if its round is still completing, so that `next` is a round whose
    /// inputs are final.
    public func arriveAndWait(
        round: UInt32, participant: Int, spins: Int = ArenaBarrier.defaultSpins,
        whenComplete: (BarrierArrivals) -> Void = { _ in }
    ) -> Outcome {
        switch arrive(round: round, participant: participant, whenComplete: whenComplete) {
        case .stopped:
            return .stopped
        case .counted(let r, let ticket, let completed):
            guard case .passed(let next) = wait(forRoundAfter: r, spins: spins) else { return .stopped }
            return .counted(round: r, ticket: ticket, completed: completed, next: next)
        case .late(let r):
            guard case .passed(let next) = wait(forRoundAfter: r, spins: spins) else { return .stopped }
            return .late(round: r, next: next)
        }
    }

    /// Wakes every process sleeping on this barrier (they look at the job's state and the round
    /// again). ``Arena/setState(_:)`` does it for every barrier when the job starts stopping.
    ///
    /// The corresponding C call is `syscall(SYS_futex, FUTEX_WAKE)`.
    public func wakeAll() {
        _ = lw_futex_wake(roundAddress, Int32.max)
    }

    /// Whether round `a` comes after round `b` (rounds wrap at 2^32; compared within 2^31).
    @inline(__always)
    public static func isAfter(_ a: UInt32, _ b: UInt32) -> Bool {
        Int32(bitPattern: a &- b) > 0
    }

    /// Writes a new barrier's line: every one of `workers` workers takes part, all of them count.
    static func initialize(at address: UnsafeMutableRawPointer, workers: Int) {
        var b = lw_barrier()
        b.participants = UInt32(workers)
        b.quorum = UInt32(workers)
        address.storeBytes(of: b, as: lw_barrier.self)
    }
}

/// The participants counted in a completed round, in arrival order: what `whenComplete` of
/// ``ArenaBarrier/arrive(round:participant:whenComplete:)`` receives. A view of the barrier's
/// arrival log, valid only during that call (the next round overwrites it).
public struct BarrierArrivals: RandomAccessCollection {
    private let log: UnsafeMutableRawPointer
    public let count: Int

    init(log: UnsafeMutableRawPointer, count: Int) {
        self.log = log
        self.count = count
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    /// The participant that arrived `i`-th (relaxed atomic load of the log entry).
    public subscript(i: Int) -> Int {
        precondition(i >= 0 && i < count, "arrival \(i) out of 0..<\(count)")
        return Int(
            UnsafeAtomic<UInt32>(at: (log + i * 4).assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
                .load(ordering: .relaxed))
    }
}
