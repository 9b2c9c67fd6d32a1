#if canImport(Glibc)
import Glibc
#endif

/// Runs a system call that returns -1 and sets errno, retrying on EINTR;
/// a failure becomes a `LapwingError` that names `object`.
@discardableResult
public func syscall<T: FixedWidthInteger>(
    _ call: String, object: @autoclosure () -> String, _ body: () -> T
) throws(LapwingError) -> T {
    while true {
        let r = body()
        if r != -1 { return r }
        let err = Glibc.errno
        if err == EINTR { continue }
        throw LapwingError.system(call, errno: err, object: object())
    }
}

/// Checks a C shim's result, which is -errno on failure (the `lw_` convention).
@discardableResult
public func shimCall<T: FixedWidthInteger & SignedInteger>(
    _ call: String, object: @autoclosure () -> String, _ body: () -> T
) throws(LapwingError) -> T {
    while true {
        let r = body()
        if r >= 0 { return r }
        let err = Int32(truncatingIfNeeded: -r)
        if err == EINTR { continue }
        throw LapwingError.system(call, errno: err, object: object())
    }
}

/// Bytes in a human unit: "2.0 GiB".
public func formatBytes(_ n: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(n)
    var i = 0
    while v >= 1024, i < units.count - 1 {
        v /= 1024
        i += 1
    }
    if i == 0 { return "\(n) B" }
    let tenths = Int((v * 10).rounded())
    return "\(tenths / 10).\(tenths % 10) \(units[i])"
}

/// Writes `text` to stderr directly (no stdio buffer, safe in a forked child).
public func writeError(_ text: String) {
    var bytes = Array(text.utf8)
    var off = 0
    while off < bytes.count {
        let n = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress! + off, $0.count - off) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        off += n
    }
}

/// The path of the running executable (/proc/self/exe), to start job hosts from.
public func currentExecutablePath() -> String {
    var buf = [UInt8](repeating: 0, count: 4096)
    let n = buf.withUnsafeMutableBytes { readlink("/proc/self/exe", $0.baseAddress!, 4095) }
    return n > 0 ? String(decoding: buf[0..<n], as: UTF8.self) : CommandLine.arguments[0]
}
