import CLapwing
import Foundation
import LapwingArena
import LapwingCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A job id no other test (or test run) uses: "t<pid>-<random>".
func uniqueJobID(_ tag: String = "") -> String {
    "t\(getpid())-\(UInt32.random(in: 0...UInt32.max))\(tag.isEmpty ? "" : "-" + tag)"
}

/// Runs `body` with a fresh job id and removes the arena afterwards, whatever happened.
func withJobID<T>(_ tag: String = "", _ body: (String) throws -> T) rethrows -> T {
    let id = uniqueJobID(tag)
    defer { try? Arena.remove(jobID: id) }
    return try body(id)
}

/// stat(2) of a path: (mode bits, size), or nil if it does not exist.
func statFile(_ path: String) -> (mode: Int, size: Int)? {
    var st = stat()
    guard stat(path, &st) == 0 else { return nil }
    return (Int(st.st_mode & 0o7777), Int(st.st_size))
}

/// Calls `body` and returns the `LapwingError` it throws; records an issue if it throws nothing.
func expectLapwingError(
    _ code: LapwingError.Code, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws(LapwingError) -> Void
) -> LapwingError? {
    do {
        try body()
        Issue.record("expected a .\(code) error, got none", sourceLocation: sourceLocation)
        return nil
    } catch {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        return error
    }
}

/// The built `lapwing-numa`: next to the test bundle, in the `.build/<config>` folder above it.
func lapwingNumaBinary() throws -> URL {
    var candidates: [URL] = []
    if let exe = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
        candidates.append(URL(fileURLWithPath: exe))
    }
    candidates.append(URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL)
    for start in candidates {
        var dir = start.deletingLastPathComponent()
        for _ in 0..<6 {
            let bin = dir.appendingPathComponent("lapwing-numa")
            if FileManager.default.isExecutableFile(atPath: bin.path) { return bin }
            if dir.lastPathComponent == ".build" || dir.path == "/" { break }
            dir = dir.deletingLastPathComponent()
        }
    }
    throw LapwingError(.notFound, "lapwing-numa not found next to \(candidates.map(\.path))")
}

/// Runs `lapwing-numa` with `arguments` in a second process; returns (exit status, stdout, stderr).
func runLapwingNuma(_ arguments: [String]) throws -> (status: Int32, stdout: Data, stderr: String) {
    let process = Process()
    process.executableURL = try lapwingNumaBinary()
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, stdout, String(decoding: stderr, as: UTF8.self))
}
