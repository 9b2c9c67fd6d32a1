import LapwingProtocol
import Testing

@Suite struct FrameTests {
    @Test func lengthPrefixIsBigEndian() throws {
        let frame = try Frame.encode(json: json(#"{"a":1}"#))
        #expect(frame[0..<4] == [0, 0, 0, 7])
        #expect(payload(frame) == json(#"{"a":1}"#))
    }

    @Test func roundTripByteByByte() throws {
        let message = ClientMessage.request(Request(id: 7, verb: .status, args: ["job": "j1"]))
        let frame = try message.frame()
        var decoder = FrameDecoder()
        for (i, byte) in frame.enumerated() {
            decoder.feed([byte])
            let got = try decoder.next()
            if i < frame.count - 1 { #expect(got == nil) } else { #expect(got?.json == payload(frame)) }
        }
        #expect(decoder.bufferedByteCount == 0)
        let decoded = try ClientMessage.decode(payload(frame))
        #expect(decoded == message)
    }

    @Test func twoFramesInOneRead() throws {
        let a = try ServerMessage.event(Event(id: 1, event: ["step": 10])).frame()
        let b = try ServerMessage.response(Response(id: 1, result: ["done": true])).frame()
        var decoder = FrameDecoder()
        decoder.feed(a + b)
        #expect(try ServerMessage.decode(try #require(try decoder.next()).json) == .event(Event(id: 1, event: ["step": 10])))
        #expect(try ServerMessage.decode(try #require(try decoder.next()).json) == .response(Response(id: 1, result: ["done": true])))
        #expect(try decoder.next() == nil)
    }

    @Test func splitAcrossReadsAtEveryPoint() throws {
        let a = try Frame.encode(json: json(#"{"x":"first"}"#))
        let b = try Frame.encode(json: json(#"{"x":"second"}"#))
        let stream = a + b
        for cut in 1..<stream.count {
            var decoder = FrameDecoder()
            var frames: [[UInt8]] = []
            decoder.feed(stream[0..<cut])
            while let f = try decoder.next() { frames.append(f.json) }
            decoder.feed(stream[cut...])
            while let f = try decoder.next() { frames.append(f.json) }
            #expect(frames == [payload(a), payload(b)], "cut at \(cut)")
        }
    }

    @Test func zeroLengthIsRejected() {
        var decoder = FrameDecoder()
        decoder.feed([0, 0, 0, 0, 0x7b])
        let error = expectProtocolError(.badFrame) { _ = try decoder.next() }
        #expect(error?.message.contains("zero length") == true)
        // The stream is out of step: the decoder keeps failing.
        expectProtocolError(.badFrame) { _ = try decoder.next() }
    }

    @Test func oversizeLengthIsRejectedBeforeItsBytesArrive() throws {
        var decoder = FrameDecoder()
        decoder.feed([0x00, 0x10, 0x00, 0x01])  // 1 MiB + 1
        let error = expectProtocolError(.frameTooLarge) { _ = try decoder.next() }
        #expect(error?.message.contains("1048577") == true)
        // Exactly 1 MiB is allowed (and waits for its bytes).
        var ok = FrameDecoder()
        ok.feed([0x00, 0x10, 0x00, 0x00])
        #expect(try ok.next() == nil)
    }

    @Test func encodingOversizeOrEmptyIsRefused() {
        expectProtocolError(.frameTooLarge) { _ = try Frame.encode(json: [UInt8](repeating: 0x20, count: (1 << 20) + 1)) }
        expectProtocolError(.badFrame) { _ = try Frame.encode(json: []) }
    }

    @Test func descriptorsGoToTheFrameHoldingTheChunksLastByte() throws {
        let a = try Frame.encode(json: json(#"{"n":1}"#))
        let b = try Frame.encode(json: json(#"{"n":2}"#))
        var decoder = FrameDecoder()
        let fd = OwnedFD(-1)  // a placeholder owner: nothing to close
        // One chunk: all of a and the first 3 bytes of b, with a descriptor (sent with b's first bytes).
        decoder.feed(a + b[0..<3], fds: [fd])
        let first = try #require(try decoder.next())
        #expect(first.fds.isEmpty)
        #expect(try decoder.next() == nil)
        decoder.feed(b[3...])
        let second = try #require(try decoder.next())
        #expect(second.fds.count == 1 && second.fds[0] === fd)
    }
}
