import Foundation
import LapwingCore
import Testing

@testable import LapwingData

#if canImport(Glibc)
import Glibc
#endif

/// Inputs a careless user or an attacker hands the readers (issue #8, points 7 and 8): endless
/// devices, inflation bombs, byte order marks, labels no model can use, and files whose bytes
/// must never reach an error message (which every user can read in `lapwing list`).
@Suite struct HostileInputTests {
    // MARK: Endless input and the read limit

    @Test(arguments: ["libsvm:/dev/zero", "csv:/dev/zero", "csv:/dev/urandom", "idx:/dev/zero"])
    func anEndlessDeviceIsRefusedAtTheReadLimit(device: String) throws {
        // idx takes a directory: its files are checked through the descriptor path below.
        if device.hasPrefix("idx:") {
            let fd = open("/dev/zero", O_RDONLY | O_CLOEXEC)
            try #require(fd >= 0)
            defer { close(fd) }
            let e = thrownError { () throws(LapwingError) in
                try IDXReader.load(
                    imagesFD: fd, imagesName: "/dev/zero", labelsFD: fd, labelsName: "/dev/zero", maxBytes: 1 << 20)
            }
            #expect(e?.code == .noSpace)
            #expect(e?.message.contains("/dev/zero: did not end within 1.0 MiB (1048577 bytes read)") == true, "\(String(describing: e))")
            return
        }
        let e = thrownError { () throws(LapwingError) in try DataSpec.parse(device + ";maxbytes=1M").load() }
        let path = String(device.drop { $0 != ":" }.dropFirst())
        #expect(e?.code == .noSpace, "\(String(describing: e))")
        // The limit, the file, and how much was read.
        #expect(
            e?.message == "\(path): did not end within 1.0 MiB (1048577 bytes read), more than the read limit of 1.0 MiB (1048576 bytes)",
            "\(String(describing: e))")
        #expect(e?.detail?.contains("maxbytes=SIZE") == true)
    }

    @Test func aRegularFileBeyondTheLimitIsRefusedBeforeItIsRead() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let p = dir.write("big.svm", String(repeating: "1 1:1\n", count: 1000))
        let e = thrownError { () throws(LapwingError) in
            try LIBSVMReader.load(path: p, options: LIBSVMOptions(maxBytes: 5999))
        }
        #expect(e?.code == .noSpace)
        #expect(e?.message == "\(p): is 5.9 KiB (6000 bytes), more than the read limit of 5.9 KiB (5999 bytes)")
        #expect(try LIBSVMReader.load(path: p, options: LIBSVMOptions(maxBytes: 6000)).rows == 1000)
    }

    @Test func aGzipBombIsRefusedAtTheLimitOfItsInflatedSize() throws {
        let dir = TempDir()
        defer { dir.remove() }
        // 8 MiB of one repeated line compress to a few KiB.
        let p = dir.write("bomb.csv.gz", gzip(Array(String(repeating: "1,2\n", count: 2 << 20).utf8)))
        let e = thrownError { () throws(LapwingError) in try DataSpec.parse("csv:\(p);maxbytes=1M").load() }
        #expect(e?.code == .noSpace)
        #expect(
            e?.message == "\(p): did not end within the first 1.0 MiB (1048577 bytes inflated), more than the read limit of 1.0 MiB (1048576 bytes)",
            "\(String(describing: e))")
        // Exactly at the limit is fine.
        let fits = dir.write("fits.csv.gz", gzip(Array(String(repeating: "1,2\n", count: 256).utf8)))
        #expect(try CSVReader.load(path: fits, options: CSVOptions(maxBytes: 1024)).rows == 256)
    }

    @Test func theDefaultLimitIsAQuarterOfMemoryAtMost16GiB() throws {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        #expect(ReadLimit.defaultBytes == min(16 << 30, pages * size / 4))
        #expect(ReadLimit.parseSize("1M") == 1 << 20 && ReadLimit.parseSize("3GiB") == 3 << 30)
        #expect(ReadLimit.parseSize("4096") == 4096 && ReadLimit.parseSize("0") == nil && ReadLimit.parseSize("x") == nil)
        let e = thrownError { () throws(LapwingError) in try DataSpec.parse("csv:a.csv;maxbytes=lots") }
        #expect(e?.code == .invalidArgument && e?.message.contains("maxbytes: 'lots' is not a size") == true)
    }

    /// A FIFO opened before its writer: the open does not wait (O_NONBLOCK), and the read waits
    /// for the writer instead of taking the missing writer for an end of file.
    @Test func aFIFOIsReadWhenItsWriterComesLater() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let fifo = dir.path + "/feed"
        #expect(mkfifo(fifo, 0o600) == 0)
        // The reader runs on a thread of its own (not the test pool's, which a blocked open could starve).
        final class Outcome: @unchecked Sendable {
            var rows: Int?
            var error: LapwingError?
            let done = DispatchSemaphore(value: 0)
        }
        let outcome = Outcome()
        let reader = Thread {
            do throws(LapwingError) {
                outcome.rows = try LIBSVMReader.load(path: fifo).rows
            } catch {
                outcome.error = error
            }
            outcome.done.signal()
        }
        reader.start()
        // open(O_WRONLY) waits for the reader, so the reader has opened the FIFO with no writer.
        let w = open(fifo, O_WRONLY | O_CLOEXEC)
        try #require(w >= 0)
        let text = Array(String(repeating: "1 1:0.5\n-1 2:1\n", count: 5000).utf8)
        let written = text.withUnsafeBytes { b -> Int in
            var off = 0
            while off < b.count {
                let n = write(w, b.baseAddress! + off, b.count - off)
                if n <= 0 { break }
                off += n
            }
            return off
        }
        close(w)
        #expect(written == text.count)
        #expect(outcome.done.wait(timeout: .now() + 120) == .success, "the reader did not finish")
        #expect(outcome.error == nil && outcome.rows == 10000, "\(String(describing: outcome.error))")
    }

    // MARK: Byte order marks

    @Test func aUTF8ByteOrderMarkDoesNotEatTheFirstRow() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
        let csv = try CSVReader.load(path: dir.write("bom.csv", bom + Array("1,2,3\n0,4,5\n".utf8)))
        #expect(csv.rows == 2 && Array(csv.dense) == [2, 3, 4, 5] && Array(csv.labels) == [1, -1])
        let named = try CSVReader.load(
            path: dir.write("bomh.csv", bom + Array("y,a\n1,2\n0,3\n".utf8)), options: CSVOptions(labelColumn: .name("y")))
        #expect(named.rows == 2 && Array(named.dense) == [2, 3])
        let svm = try LIBSVMReader.load(path: dir.write("bom.svm", bom + Array("1 1:2\n-1 2:3\n".utf8)))
        #expect(svm.rows == 2 && Array(svm.labels) == [1, -1])
    }

    // MARK: No file content in error messages

    /// A secret that must never show in a message, in every place a reader used to quote.
    static let secret = "Zq7SecretToken"

    static let leaks: [(String, String, String)] = [
        ("libsvm", "a.svm", "1 1:1\n\(secret) 1:2\n"),
        ("libsvm", "b.svm", "1 1:\(secret)\n"),
        ("libsvm", "c.svm", "1 \(secret)\n"),
        ("libsvm", "d.svm", "1 99999999999999999999\(secret):1\n"),
        ("csv", "a.csv", "1,2\n1,\(secret)\n"),
        ("csv", "b.csv", "y,\(secret)\n1,2\n1,x\n"),
        ("csv", "c.csv", "\(secret),1\n1,2\n"),
        ("csv", "d.csv", "1,2\n\(secret)\u{1}\u{2}\u{ff},3\n"),
        ("idx", "train-images-idx3-ubyte", "\(secret)\(secret)"),
    ]

    @Test(arguments: leaks)
    func errorsDescribeBadTokensWithoutQuotingThem(format: String, file: String, text: String) throws {
        let dir = TempDir()
        defer { dir.remove() }
        let p = dir.write(file, text)
        let e = thrownError { () throws(LapwingError) -> Dataset in
            switch format {
            case "libsvm": return try LIBSVMReader.load(path: p)
            case "csv":
                // b.csv's secret is a header name (auto-detected), the others' are data.
                return try CSVReader.load(path: p, options: CSVOptions(hasHeader: file == "b.csv" ? nil : false))
            default: return try IDXReader.load(images: p, labels: dir.write("l", idxLabels([1])))
            }
        }
        let all = "\(String(describing: e))"
        #expect(e != nil)
        #expect(!all.contains("Zq7") && !all.contains("Secret") && !all.contains("5A71"), "\(file): \(all)")
        #expect(all.contains(p), "names the file: \(all)")
    }

    @Test func aBinaryTokenIsDescribedAsSuch() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let p = dir.write("bin.csv", [UInt8]("1,2\n1,".utf8) + [0x00, 0x9F, 0x41, 0x42] + [UInt8]("\n".utf8))
        let e = thrownError { () throws(LapwingError) in try CSVReader.load(path: p) }
        #expect(e?.message == "\(p):2: field 2: a 4-byte token with control or non-ASCII bytes that is not a number")
    }

    // MARK: What the labels hold

    @Test func theFirstLabelABinaryModelCannotUseIsFoundWithItsLine() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let frac = try CSVReader.load(path: dir.write("f.csv", "0,1\n1,2\n1.5,3\n2.8,4\n"))
        #expect(frac.labelKind == .real)
        #expect(frac.labelFacts.firstNonBinary == .init(place: "\(dir.path)/f.csv:3", problem: "a label that is neither -1, 0 nor 1"))
        #expect(frac.labelFacts.firstNonClass == .init(place: "\(dir.path)/f.csv:3", problem: "a fractional label"))
        let mixed = try LIBSVMReader.load(path: dir.write("m.svm", "-1 1:1\n\n1 1:2\n0 1:3\n"))
        #expect(mixed.labelKind == .real)
        #expect(
            mixed.labelFacts.firstNonBinary
                == .init(place: "\(dir.path)/m.svm:4", problem: "a label 0 after labels -1 (one set: -1/+1 or 0/1)"))
        #expect(mixed.labelFacts.firstNonClass?.place == "\(dir.path)/m.svm:1")
        #expect(mixed.labelFacts.distinctValues == 2)
        let one = try CSVReader.load(path: dir.write("one.csv", "3,1\n3,2\n3,3\n"))
        #expect(one.labelFacts.distinctValues == 1 && one.labelFacts.firstNonClass == nil)
        let ok = try CSVReader.load(path: dir.write("ok.csv", "0,1\n1,2\n"))
        #expect(ok.labelKind == .binary && ok.labelFacts.firstNonBinary == nil && ok.labelFacts.distinctValues == 2)
        // A cache file knows its rows, not its lines.
        let cache = dir.path + "/f.lwdata"
        try frac.write(to: cache)
        #expect(try Dataset.map(path: cache).labelFacts.firstNonBinary?.place == "\(cache): row 2")
    }
}
