import Foundation
import LapwingCore
import LapwingProtocol
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The protocol's own limits: descriptors per frame (over all the chunks of a frame, not per
/// message), one unfinished frame held at a time, duplicate JSON keys refused.
@Suite struct LimitsTests {
    /// Descriptors of this process that are open now.
    /// Descriptors whose closing can be seen without counting the process's descriptors (other
    /// tests open and close theirs at the same time): `n` duplicates of one pipe's write end.
    /// Once every one of them is closed, the read end reports hang-up.
    final class WriteEnds {
        let readEnd: Int32
        private(set) var handedOut: [OwnedFD] = []

        init() {
            var p: [Int32] = [-1, -1]
            precondition(pipe(&p) == 0)
            readEnd = p[0]
            writeEnd = p[1]
        }

        private var writeEnd: Int32

        /// `n` more descriptors of the write end.
        func take(_ n: Int) -> [OwnedFD] {
            (0..<n).map { _ in OwnedFD(fcntl(writeEnd, F_DUPFD_CLOEXEC, 0)) }
        }

        /// Whether every descriptor handed out has been closed (the original is closed first).
        var allClosed: Bool {
            if writeEnd >= 0 {
                close(writeEnd)
                writeEnd = -1
            }
            var fd = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
            return poll(&fd, 1, 0) == 1 && fd.revents & Int16(POLLHUP) != 0
        }

        deinit {
            if writeEnd >= 0 { close(writeEnd) }
            close(readEnd)
        }
    }

    /// `n` owned descriptors of /dev/null.
    static func nulls(_ n: Int) -> [OwnedFD] {
        (0..<n).map { _ in OwnedFD(open("/dev/null", O_RDONLY | O_CLOEXEC)) }
    }

    @Test func descriptorsAreCountedPerFrameNotPerChunk() throws {
        // The flood of issue 8: a 1 MiB frame begun, then 1 byte and 16 descriptors at a time.
        let flood = WriteEnds()
        var decoder = FrameDecoder()
        decoder.feed([0x00, 0x10, 0x00, 0x00], fds: [])
        decoder.feed([0x7b], fds: flood.take(16))
        #expect(try decoder.next() == nil, "16 descriptors for one frame are allowed")
        #expect(decoder.pendingDescriptorCount == 16)
        decoder.feed([0x20], fds: flood.take(1))
        let error = expectProtocolError(.invalidArgument) { _ = try decoder.next() }
        #expect(error?.message == "17 descriptors attached to one frame", "\(String(describing: error))")
        #expect(decoder.pendingDescriptorCount == 0)
        #expect(flood.allClosed, "the flood's descriptors are closed at once")
        // Later chunks' descriptors close at once too, and the error stays.
        let later = WriteEnds()
        decoder.feed([0x20], fds: later.take(3))
        #expect(later.allClosed)
        expectProtocolError(.invalidArgument) { _ = try decoder.next() }
        #expect(decoder.bufferedByteCount == 0, "a failed stream holds no bytes")
    }

    @Test func aCompleteFrameWithTooManyDescriptorsFailsAndClosesThem() throws {
        let sent = WriteEnds()
        var decoder = FrameDecoder()
        let frame = try Frame.encode(json: json(#"{"type":"hello","version":1,"client":"x"}"#))
        decoder.feed(frame[0..<10], fds: sent.take(10))
        decoder.feed(frame[10...], fds: sent.take(10))
        expectProtocolError(.invalidArgument) { _ = try decoder.next() }
        #expect(sent.allClosed)
    }

    @Test func descriptorsOfSuccessiveFramesAreCountedApart() throws {
        // Sixteen on each of three frames is within the limit: the count starts again per frame.
        var decoder = FrameDecoder()
        let frame = try Frame.encode(json: json(#"{"type":"request","id":1,"verb":"version","args":{}}"#))
        for _ in 0..<3 {
            decoder.feed(frame, fds: Self.nulls(16))
            let got = try #require(try decoder.next())
            #expect(got.fds.count == 16)
            got.fds.forEach { $0.close() }
        }
        #expect(decoder.pendingDescriptorCount == 0)
    }

    @Test func theDecoderHoldsOneUnfinishedFrameAtMost() throws {
        var decoder = FrameDecoder()
        let big = try Frame.encode(json: [UInt8](repeating: 0x20, count: ControlProtocol.maxFrameLength - 2) + json("{}"))
        let small = try Frame.encode(json: json("{}"))
        // A big frame, a small one, and the start of another big one, in 64 KiB chunks.
        let stream = big + small + big.prefix(100_000)
        var frames = 0
        var index = 0
        while index < stream.count {
            let end = min(stream.count, index + 65_536)
            decoder.feed(stream[index..<end])
            index = end
            while let f = try decoder.next() {
                frames += 1
                #expect(f.json.count <= ControlProtocol.maxFrameLength)
            }
            #expect(decoder.bufferedByteCount <= 4 + ControlProtocol.maxFrameLength)
        }
        #expect(frames == 2)
        #expect(decoder.bufferedByteCount == 100_000)
    }

    @Test func descriptorFloodOverASocketPairIsRefused() throws {
        let (a, b) = try UnixConnection.pair()
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(null) }
        try a.send(frame: [0x00, 0x10, 0x00, 0x00])
        try a.send(frame: [0x7b], fds: [Int32](repeating: null, count: 16))
        try a.send(frame: [0x20], fds: [Int32](repeating: null, count: 16))
        let error = expectProtocolError(.invalidArgument) { _ = try b.receiveFrame(timeout: .seconds(5)) }
        #expect(error?.message.contains("descriptors attached to one frame") == true)
    }

    @Test func duplicateKeysAreRefusedNamingTheKeyAndWhere() throws {
        let flat = expectProtocolError(.badFrame) { _ = try JSONValue.parse(json(#"{"a":1,"b":2,"a":3}"#)) }
        #expect(flat?.detail == #"duplicate key "a" at character 13"#, "\(String(describing: flat))")
        let nested = expectProtocolError(.badFrame) { _ = try JSONValue.parse(json(#"{"x":[{"k":1, "k" :2}]}"#)) }
        #expect(nested?.detail == #"duplicate key "k" at character 14"#, "\(String(describing: nested))")
        // Escapes do not hide a duplicate: "\u0061" is "a".
        let escaped = expectProtocolError(.badFrame) { _ = try JSONValue.parse(json(#"{"a":1,"\u0061":2}"#)) }
        #expect(escaped?.detail?.hasPrefix(#"duplicate key "a" at character 7"#) == true)
        // The same key in different objects is fine.
        #expect(try JSONValue.parse(json(#"{"a":{"a":1},"b":{"a":2}}"#))["b"]?["a"] == .number(2))
        // A request whose id is given twice is refused, not read as either id.
        let request = expectProtocolError(.badFrame) {
            _ = try ClientMessage.decode(json(#"{"type":"request","id":1,"verb":"list","args":{},"id":2}"#))
        }
        #expect(request?.detail?.contains(#"duplicate key "id""#) == true)
    }

    @Test func aLongDuplicateKeyIsShortenedInTheError() throws {
        let key = String(repeating: "k", count: 10_000)
        let error = expectProtocolError(.badFrame) { _ = try JSONValue.parse(json("{\"\(key)\":1,\"\(key)\":2}")) }
        #expect((error?.detail?.count ?? .max) < 200)
    }
}
