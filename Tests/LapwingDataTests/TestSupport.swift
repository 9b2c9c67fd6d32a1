import Foundation
import LapwingCore
import Testing

@testable import LapwingData

/// A unique temporary directory for one test, removed by `remove()`.
struct TempDir {
    let path: String

    init(_ tag: String = #function) {
        let clean = tag.filter { $0.isLetter || $0.isNumber }
        path = NSTemporaryDirectory() + "lapwing-data-\(clean)-\(getpid())-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }

    /// Writes `bytes` to `name` in the directory and returns the full path.
    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) -> String {
        let p = path + "/" + name
        if let slash = name.lastIndex(of: "/") {
            try! FileManager.default.createDirectory(
                atPath: path + "/" + name[..<slash], withIntermediateDirectories: true)
        }
        _ = FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }

    @discardableResult
    func write(_ name: String, _ text: String) -> String { write(name, Array(text.utf8)) }
}

/// Gzip-compresses `bytes` with the system's gzip (test helper only).
func gzip(_ bytes: [UInt8]) -> [UInt8] {
    let dir = TempDir("gzip")
    defer { dir.remove() }
    let p = dir.write("x", bytes)
    let proc = Process()
    proc.executableURL = URL(fileURLWithPath: "/bin/gzip")
    proc.arguments = ["-n", "-f", p]
    try! proc.run()
    proc.waitUntilExit()
    return Array(FileManager.default.contents(atPath: p + ".gz")!)
}

/// Runs `body` and returns the LapwingError it threw (nil if it did not throw).
func thrownError<T>(_ body: () throws(LapwingError) -> T) -> LapwingError? {
    do {
        _ = try body()
        return nil
    } catch {
        return error
    }
}

enum FileManagerShim {
    static func list(_ dir: String) throws -> [String] { try FileManager.default.contentsOfDirectory(atPath: dir) }
    static func read(_ path: String) throws -> [UInt8] {
        guard let d = FileManager.default.contents(atPath: path) else { throw CocoaError(.fileReadNoSuchFile) }
        return Array(d)
    }
}
