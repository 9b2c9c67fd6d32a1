import CLapwing
import LapwingCore

/// Pins the calling process to one CPU (an OS PU index).
///
/// Sets the affinity of the calling thread; Lapwing's workers and averager are single-threaded
/// processes (design section 2), so this pins the process, and children forked later inherit it.
/// The corresponding C function is `sched_setaffinity`.
public func pinCurrentProcess(toCPU cpu: Int) throws(LapwingError) {
    guard cpu >= 0, cpu <= Int(Int32.max) else {
        throw LapwingError(.invalidArgument, "CPU \(cpu): not a valid CPU index")
    }
    try shimCall("sched_setaffinity", object: "CPU \(cpu)") { lw_affinity_set_one(Int32(cpu)) }
}

/// The CPUs (OS PU indices, ascending) the calling thread may run on.
/// The corresponding C function is `sched_getaffinity`.
public func currentAffinity() throws(LapwingError) -> [Int] {
    var capacity = 256
    while true {
        var buffer = [Int32](repeating: 0, count: capacity)
        let cap = Int32(capacity)
        let n = try shimCall("sched_getaffinity", object: "the calling process") {
            buffer.withUnsafeMutableBufferPointer { lw_affinity_get($0.baseAddress, cap) }
        }
        if Int(n) <= capacity { return buffer.prefix(Int(n)).map(Int.init) }
        capacity = Int(n)
    }
}

/// A CPU list in the kernel's cpulist format: [0, 1, 2, 3, 8, 10] → "0-3,8,10".
public func formatCPUList(_ cpus: [Int]) -> String {
    let sorted = cpus.sorted()
    var parts: [String] = []
    var i = 0
    while i < sorted.count {
        var j = i
        while j + 1 < sorted.count, sorted[j + 1] == sorted[j] + 1 { j += 1 }
        parts.append(j == i ? "\(sorted[i])" : "\(sorted[i])-\(sorted[j])")
        i = j + 1
    }
    return parts.joined(separator: ",")
}
