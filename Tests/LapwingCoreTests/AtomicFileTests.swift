import Foundation
import LapwingCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// AtomicFile leaves either the old file or the whole new one, and never a temp file.
@Suite struct AtomicFileTests {
    let dir: String

    init() throws {
        dir = "/tmp/lapwing-core-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    func leftovers() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp.") }
    }

    @Test func writesReplacesAndKeepsTheMode() throws {
        let path = dir + "/state.json"
        try AtomicFile.write(to: path, bytes: Array("first".utf8), mode: 0o600)
        try AtomicFile.write(to: path, bytes: Array("second, longer".utf8), mode: 0o600)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "second, longer")
        var st = stat()
        #expect(stat(path, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
        #expect(try leftovers().isEmpty)
        try? FileManager.default.removeItem(atPath: dir)
    }

    @Test func aFailingFillKeepsTheOldFileAndRemovesTheTempFile() throws {
        let path = dir + "/model.bin"
        try AtomicFile.write(to: path, bytes: [1, 2, 3])
        #expect(throws: LapwingError.self) {
            try AtomicFile.write(to: path) { (w: inout FileWriter) throws(LapwingError) in
                try w.write([9, 9, 9, 9])
                try w.flush()
                throw LapwingError(.invalidData, "stopped half way")
            }
        }
        #expect(FileManager.default.contents(atPath: path) == Data([1, 2, 3]))
        #expect(try leftovers().isEmpty)
        try? FileManager.default.removeItem(atPath: dir)
    }

    @Test func aMissingDirectoryIsNamedInTheError() throws {
        let path = dir + "/no/such/dir/file"
        do {
            try AtomicFile.write(to: path, bytes: [0])
            Issue.record("wrote into a missing directory")
        } catch {
            #expect(error.code == .notFound)
            #expect(error.message.contains(dir + "/no/such/dir/file.tmp."))
            #expect(error.message.contains("open failed"))
        }
        try? FileManager.default.removeItem(atPath: dir)
    }

    @Test func largeWritesGoThroughTheBufferAndRawPathsInOrder() throws {
        let path = dir + "/big"
        let floats = (0..<100_000).map { Float($0) }
        try AtomicFile.write(to: path) { (w: inout FileWriter) throws(LapwingError) in
            try w.write("HEAD")
            try w.write(contentsOf: floats)
            try w.write(Array(repeating: UInt8(7), count: 70_000))
            try w.write("TAIL")
        }
        let data = try #require(FileManager.default.contents(atPath: path))
        #expect(data.count == 4 + 400_000 + 70_000 + 4)
        #expect(data.prefix(4) == Data("HEAD".utf8) && data.suffix(4) == Data("TAIL".utf8))
        let back = data.dropFirst(4).prefix(400_000).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        #expect(back == floats)
        try? FileManager.default.removeItem(atPath: dir)
    }
}
