import Atomics
import Foundation
import LapwingCore
import LapwingTopology

#if canImport(Glibc)
import Glibc
#endif

/// Runs `body(k)` on one new thread per CPU in `cpus`, thread k pinned to `cpus[k]` (checked with
/// `sched_getaffinity` before it starts), all starting together once every thread is pinned.
/// Waits for them all and returns their results in order; the first failure is thrown. If any
/// thread cannot be pinned, none runs `body` (threads of one probe wait for each other).
func onCPUs<T>(_ cpus: [Int], _ body: @escaping @Sendable (Int) throws(LapwingError) -> T) throws(LapwingError) -> [T] {
    let done = DispatchSemaphore(value: 0)
    let ready = ManagedAtomic<Int>(0)
    let unpinned = ManagedAtomic<Bool>(false)
    let boxes = cpus.map { _ in ResultBox<T>() }
    for (k, cpu) in cpus.enumerated() {
        let box = boxes[k]
        let thread = Thread {
            let pinned = Result { () throws(LapwingError) in
                try pinCurrentProcess(toCPU: cpu)
                let mask = try currentAffinity()
                guard mask == [cpu] else {
                    throw LapwingError(.internalError, "thread pinned to CPU \(cpu) may run on CPUs \(formatCPUList(mask))")
                }
            }
            // Every thread arrives, pinned or not, so that none waits forever for a failed one.
            if case .failure = pinned { unpinned.store(true, ordering: .releasing) }
            ready.wrappingIncrement(ordering: .acquiringAndReleasing)
            while ready.load(ordering: .acquiring) < cpus.count { sched_yield() }
            if case .failure(let e) = pinned {
                box.result = .failure(e)
                box.pinFailed = true
            } else if unpinned.load(ordering: .acquiring) {
                box.result = .failure(LapwingError(.internalError, "not run: another thread of the probe could not be pinned"))
            } else {
                box.result = Result { () throws(LapwingError) in try body(k) }
            }
            done.signal()
        }
        thread.start()
    }
    for _ in cpus { done.wait() }
    for box in boxes { if box.pinFailed, case .failure(let e) = box.result! { throw e } }
    return try boxes.map { box throws(LapwingError) in try box.result!.get() }
}

/// One thread's result, written by it before it signals and read after the wait.
private final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, LapwingError>?
    var pinFailed = false
}
