import Atomics
import CLapwing

/// A view of one process's slot (`struct lw_slot`, one cache line) in an arena.
///
/// Every access is atomic over shared memory (swift-atomics' `UnsafeAtomic(at:)`): counters use
/// relaxed ordering and wrap on overflow. The view holds a raw pointer: it is valid only while
/// the `Arena` it came from is alive.
public struct ArenaSlot {
    /// The slot's address in the mapping (64-byte aligned).
    public let address: UnsafeMutableRawPointer

    init(_ address: UnsafeMutableRawPointer) {
        self.address = address
    }

    /// A view of the slot at `address`, which must be the ``address`` of a slot in a mapping
    /// that is still alive (for instance one passed to another thread as an integer).
    public init(unsafeAddress address: UnsafeMutableRawPointer) {
        precondition(Int(bitPattern: address) % MemoryLayout<lw_slot>.size == 0, "slots are 64-byte aligned")
        self.address = address
    }

    private func word(_ field: KeyPath<lw_slot, UInt64>) -> UnsafeAtomic<UInt64> {
        let p = address + MemoryLayout<lw_slot>.offset(of: field)!
        return UnsafeAtomic(at: p.assumingMemoryBound(to: UInt64.AtomicRepresentation.self))
    }

    private var pidWord: UnsafeAtomic<Int32> {
        let p = address + MemoryLayout<lw_slot>.offset(of: \lw_slot.pid)!
        return UnsafeAtomic(at: p.assumingMemoryBound(to: Int32.AtomicRepresentation.self))
    }

    /// Optimizer steps taken (relaxed load).
    public var steps: UInt64 { word(\.steps).load(ordering: .relaxed) }
    /// Training samples consumed (relaxed load).
    public var samples: UInt64 { word(\.samples).load(ordering: .relaxed) }
    /// CLOCK_MONOTONIC, in ns, of the last `beat()` (relaxed load); 0 if none.
    public var heartbeatNanoseconds: UInt64 { word(\.heartbeat_ns).load(ordering: .relaxed) }
    /// The process in this slot, 0 if none (relaxed load).
    public var pid: Int32 { pidWord.load(ordering: .relaxed) }

    /// Adds to the step counter (relaxed, wrapping).
    public func addSteps(_ n: UInt64 = 1) { word(\.steps).wrappingIncrement(by: n, ordering: .relaxed) }
    /// Adds to the sample counter (relaxed, wrapping).
    public func addSamples(_ n: UInt64) { word(\.samples).wrappingIncrement(by: n, ordering: .relaxed) }
    /// Records a sign of life now (CLOCK_MONOTONIC, relaxed store).
    public func beat() { beat(at: monotonicNanoseconds()) }
    /// Records a sign of life at `nanoseconds` (relaxed store).
    public func beat(at nanoseconds: UInt64) { word(\.heartbeat_ns).store(nanoseconds, ordering: .relaxed) }
    /// Sets the process in this slot (relaxed store).
    public func setPID(_ pid: Int32) { pidWord.store(pid, ordering: .relaxed) }
    /// The process's own number `i` (0..<4) of `aux` (relaxed load).
    public func aux(_ i: Int) -> UInt64 { auxWord(i).load(ordering: .relaxed) }
    /// Sets the process's own number `i` (0..<4) of `aux` (relaxed store).
    public func setAux(_ i: Int, _ value: UInt64) { auxWord(i).store(value, ordering: .relaxed) }

    private func auxWord(_ i: Int) -> UnsafeAtomic<UInt64> {
        precondition(i >= 0 && i < 4, "aux index \(i) out of 0..<4")
        let p = address + MemoryLayout<lw_slot>.offset(of: \lw_slot.aux)! + i * 8
        return UnsafeAtomic(at: p.assumingMemoryBound(to: UInt64.AtomicRepresentation.self))
    }

    /// Sets the counters (relaxed stores), e.g. when resuming from a checkpoint.
    public func setCounters(steps: UInt64, samples: UInt64) {
        word(\.steps).store(steps, ordering: .relaxed)
        word(\.samples).store(samples, ordering: .relaxed)
    }
}
