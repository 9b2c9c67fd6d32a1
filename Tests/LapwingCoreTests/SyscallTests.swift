import LapwingCore
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// System-call wrappers: errno becomes a classified error that names the object; EINTR retries.
@Suite struct SyscallTests {
    @Test func aFailedCallNamesTheObjectAndTheReason() {
        do {
            try syscall("open", object: "/nonexistent/lapwing") { open("/nonexistent/lapwing", O_RDONLY) }
            Issue.record("open of a missing file succeeded")
        } catch {
            #expect(error.code == .notFound)
            #expect(error.errno == ENOENT)
            #expect(error.description == "/nonexistent/lapwing: open failed: No such file or directory (errno 2)")
        }
    }

    @Test func eintrIsRetriedAndOtherErrorsAreClassified() throws {
        var calls = 0
        let r = try shimCall("lw_thing", object: "thing") { () -> Int32 in
            calls += 1
            return calls < 3 ? -EINTR : 42
        }
        #expect(r == 42 && calls == 3)
        let expected: [(Int32, LapwingError.Code)] = [
            (EACCES, .permissionDenied), (EPERM, .permissionDenied), (ENOSPC, .noSpace), (ENOMEM, .noSpace),
            (EEXIST, .busy), (ENOSYS, .unsupported), (EINVAL, .system),
        ]
        for (err, code) in expected {
            #expect(LapwingError.system("x", errno: err, object: "o").code == code, "errno \(err)")
        }
    }

    @Test func bytesAreFormattedInBinaryUnits() {
        #expect(formatBytes(512) == "512 B")
        #expect(formatBytes(1536) == "1.5 KiB")
        #expect(formatBytes(2 << 30) == "2.0 GiB")
    }
}

/// The seeded generator is reproducible, separates streams and stays in range.
@Suite struct SeededGeneratorTests {
    @Test func sameSeedSameSequenceAndStreamsDiffer() {
        var a = SeededGenerator(seed: 7)
        var b = SeededGenerator(seed: 7)
        var c = SeededGenerator(seed: 7, stream: 1)
        let sa = (0..<64).map { _ in a.next() }
        #expect(sa == (0..<64).map { _ in b.next() })
        #expect(sa != (0..<64).map { _ in c.next() })
    }

    @Test func unitFloatsAndIndicesAreInRangeAndRoughlyUniform() {
        var g = SeededGenerator(seed: 11)
        var counts = [Int](repeating: 0, count: 10)
        var sum = 0.0
        for _ in 0..<100_000 {
            let u = g.nextUnitFloat()
            #expect(u >= 0 && u < 1)
            sum += Double(u)
            counts[g.nextIndex(10)] += 1
        }
        #expect(abs(sum / 100_000 - 0.5) < 0.01)
        for n in counts { #expect(abs(n - 10_000) < 500) }
    }
}
