import LapwingCore
import LapwingProtocol
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite struct MessageTests {
    @Test func malformedJSONIsABadFrameWithTheParsersReason() {
        let error = expectProtocolError(.badFrame) { _ = try ClientMessage.decode(json(#"{"type":"request","id":1,"#)) }
        let detail = error?.detail ?? ""
        #expect(!detail.isEmpty)
        #expect(detail.contains("end of file"), "the parser's own reason: \(detail)")
        let at = expectProtocolError(.badFrame) { _ = try ClientMessage.decode(json(#"{"type":x}"#)) }
        #expect(at?.detail?.contains("character 8") == true, "\(at?.detail ?? "")")
    }

    @Test func aFrameHoldsOneObject() {
        let error = expectProtocolError(.badFrame) { _ = try ClientMessage.decode(json("[1,2]")) }
        #expect(error?.message.contains("array") == true)
        expectProtocolError(.badFrame) { _ = try ClientMessage.decode(json(#"{"id":1}"#)) }
    }

    @Test func unknownTypeIsRefused() {
        let error = expectProtocolError(.badFrame) { _ = try ClientMessage.decode(json(#"{"type":"response","id":1,"ok":true,"result":{}}"#)) }
        #expect(error?.message.contains("\"response\"") == true)
        expectProtocolError(.badFrame) { _ = try ServerMessage.decode(json(#"{"type":"request","id":1,"verb":"list","args":{}}"#)) }
    }

    @Test func unknownVerbNamesItAndCarriesTheID() {
        let error = expectProtocolError(.unknownVerb) {
            _ = try ClientMessage.decode(json(#"{"type":"request","id":5,"verb":"explode","args":{}}"#))
        }
        #expect(error?.message.contains("\"explode\"") == true)
        #expect(error?.requestID == 5)
        #expect(error?.detail?.contains("submit") == true)
    }

    @Test func unknownFieldInTheEnvelopeNamesIt() {
        let error = expectProtocolError(.unknownField) {
            _ = try ClientMessage.decode(json(#"{"type":"request","id":5,"verb":"list","args":{},"urgent":true}"#))
        }
        #expect(error?.message.contains("\"urgent\"") == true)
        #expect(error?.requestID == 5)
    }

    @Test func missingEnvelopeFieldNamesIt() {
        let error = expectProtocolError(.invalidArgument) {
            _ = try ClientMessage.decode(json(#"{"type":"request","id":5,"verb":"list"}"#))
        }
        #expect(error?.message.contains("\"args\"") == true)
        let noID = expectProtocolError(.invalidArgument) {
            _ = try ClientMessage.decode(json(#"{"type":"request","verb":"list","args":{}}"#))
        }
        #expect(noID?.message.contains("\"id\"") == true)
        #expect(noID?.requestID == nil)
    }

    @Test func wrongTypedEnvelopeFieldNamesIt() {
        let error = expectProtocolError(.invalidArgument) {
            _ = try ClientMessage.decode(json(#"{"type":"request","id":1.5,"verb":"list","args":{}}"#))
        }
        #expect(error?.message.contains("\"id\"") == true)
    }

    @Test func unknownFieldInArgsNamesIt() throws {
        guard case .request(let request) = try ClientMessage.decode(json(#"{"type":"request","id":2,"verb":"status","args":{"jobb":"j1"}}"#))
        else { Issue.record("not a request"); return }
        let error = expectProtocolError(.unknownField) { _ = try Call.decode(request) }
        #expect(error?.message.contains("\"jobb\"") == true)
        #expect(error?.detail?.contains("job") == true)
        #expect(error?.requestID == 2)
    }

    @Test func missingFieldInArgsNamesIt() {
        let error = expectProtocolError(.invalidArgument) { _ = try Call.decode(Request(id: 3, verb: .cancel, args: [:])) }
        #expect(error?.message.contains("missing field \"job\"") == true)
        let wrongType = expectProtocolError(.invalidArgument) { _ = try Call.decode(Request(id: 3, verb: .cancel, args: ["job": 42])) }
        #expect(wrongType?.message.contains("\"job\" must be a string") == true)
    }

    @Test func nestedFieldsOfSubmitAreStrict() {
        let args: JSONValue = ["spec": ["model": "logreg"], "files": [["role": "train", "name": "a.svm", "mode": "r"]]]
        let error = expectProtocolError(.unknownField) { _ = try Call.decode(Request(id: 4, verb: .submit, args: args)) }
        #expect(error?.message.contains("files[0]") == true)
        #expect(error?.message.contains("\"mode\"") == true)
        let noSpec = expectProtocolError(.invalidArgument) { _ = try Call.decode(Request(id: 4, verb: .submit, args: ["files": []])) }
        #expect(noSpec?.message.contains("\"spec\"") == true)
    }

    @Test func listPagesByLimitAndBytesOldestFirst() throws {
        guard case .list(let plain) = try Call.decode(Request(id: 1, verb: .list, args: [:])) else {
            Issue.record("not a list")
            return
        }
        #expect(plain == ListArgs(before: nil, limit: 100))
        guard case .list(let paged) = try Call.decode(Request(id: 2, verb: .list, args: ["before": "j9", "limit": 5])) else {
            Issue.record("not a list")
            return
        }
        #expect(paged == ListArgs(before: "j9", limit: 5))
        expectProtocolError(.invalidArgument) { _ = try Call.decode(Request(id: 3, verb: .list, args: ["limit": 0])) }
        expectProtocolError(.invalidArgument) { _ = try Call.decode(Request(id: 3, verb: .list, args: ["limit": 101])) }
        expectProtocolError(.unknownField) { _ = try Call.decode(Request(id: 3, verb: .list, args: ["job": "j1"])) }

        // Items are "0", "1", ... as JSON strings; item 3 is large.
        let items: [[UInt8]] = (0..<6).map { k in JSONValue.string(k == 3 ? String(repeating: "x", count: 100) : "\(k)").jsonBytes() }
        func page(_ end: Int, _ limit: Int, _ budget: Int) throws -> JSONValue {
            try JSONValue.parse(ListArgs.page(before: end, limit: limit, budget: budget) { k throws(ProtocolError) in items[k] })
        }
        #expect(try page(6, 2, 1000) == ["4", "5"])
        #expect(try page(4, 10, 1000) == ["0", "1", "2", .string(String(repeating: "x", count: 100))])
        // The budget stops a page before the large item, but a page always holds one item.
        #expect(try page(6, 10, 50) == ["4", "5"])
        #expect(try page(4, 10, 50) == [.string(String(repeating: "x", count: 100))])
        #expect(try page(0, 10, 1000) == [])
    }

    @Test func exportChoosesModelOrMetrics() throws {
        guard case .export(let plain) = try Call.decode(Request(id: 1, verb: .export, args: ["job": "j1"])) else {
            Issue.record("not an export")
            return
        }
        #expect(plain == ExportArgs(job: "j1", what: .model))
        guard case .export(let m) = try Call.decode(Request(id: 2, verb: .export, args: ["job": "j1", "what": "metrics"])) else {
            Issue.record("not an export")
            return
        }
        #expect(m.what == .metrics)
        let bad = expectProtocolError(.invalidArgument) {
            _ = try Call.decode(Request(id: 3, verb: .export, args: ["job": "j1", "what": "weights"]))
        }
        #expect(bad?.message.contains("\"weights\"") == true && bad?.detail?.contains("model, metrics") == true)
        expectProtocolError(.unknownField) { _ = try Call.decode(Request(id: 4, verb: .status, args: ["job": "j1", "what": "model"])) }
    }

    @Test func argumentlessVerbsTakeAnEmptyObject() throws {
        for verb in [Verb.list, .topology, .version] {
            #expect(try Call.decode(Request(id: 1, verb: verb)).verb == verb)
            expectProtocolError(.unknownField) { _ = try Call.decode(Request(id: 1, verb: verb, args: ["job": "x"])) }
        }
        #expect(Verb.allCases.count == 13)
        #expect(Verb.allCases.filter(\.isStreaming) == [.watch])
    }

    @Test func descriptorsWhereNoneBelongAreRefusedAndClosed() throws {
        var pipeFDs: [Int32] = [-1, -1]
        #expect(pipe(&pipeFDs) == 0)
        defer { _ = close(pipeFDs[1]) }
        let fd = OwnedFD(pipeFDs[0])
        let error = expectProtocolError(.invalidArgument) {
            _ = try Call.decode(Request(id: 9, verb: .status, args: ["job": "j1"]), fds: [fd])
        }
        #expect(error?.requestID == 9)
        #expect(fd.rawValue == -1)
        // The pipe's read end is gone (checking the fd number would race with other tests' opens).
        var p = pollfd(fd: pipeFDs[1], events: Int16(POLLOUT), revents: 0)
        #expect(poll(&p, 1, 0) == 1 && p.revents & Int16(POLLERR) != 0, "the descriptor was closed")
    }

    @Test func submitNeedsOneDescriptorPerFile() {
        let args: JSONValue = ["spec": [:], "files": [["role": "train", "name": "a"], ["role": "test", "name": "b"]]]
        let error = expectProtocolError(.invalidArgument) { _ = try Call.decode(Request(id: 1, verb: .submit, args: args), fds: []) }
        #expect(error?.message.contains("2 files described, 0 descriptors") == true)
    }

    @Test func aSubmitsPriorityIsAnIntegerWithinItsRange() throws {
        for (value, wanted) in [
            (JSONValue.number(101), "field \"priority\" is 101"), (.number(-1e18), "field \"priority\" must be an integer"),
            (.number(2.5), "must be an integer"), (.string("high"), "must be an integer, found string"),
            (.null, "must be an integer"), (.number(Double(Int.max)), "must be an integer"),
        ] {
            let args: JSONValue = ["spec": [:], "files": [], "priority": value]
            let error = expectProtocolError(.invalidArgument) { _ = try Call.decode(Request(id: 1, verb: .submit, args: args), fds: []) }
            #expect(error?.message.contains(wanted) == true, "\(value): \(error?.message ?? "accepted")")
        }
        for p in [-100, 0, 100] {
            let args: JSONValue = ["spec": [:], "files": [], "priority": .number(Double(p))]
            guard case .submit(let decoded, _) = try Call.decode(Request(id: 1, verb: .submit, args: args), fds: []) else {
                Issue.record("not a submit")
                continue
            }
            #expect(decoded.priority == p)
        }
    }

    @Test func typedArgsEncodeAsTheyDecode() throws {
        let submit = SubmitArgs(
            spec: ["model": "mlp:784-256-10", "epochs": 3], files: [FileRole(role: "train-images", name: "t.idx")], priority: -5)
        let request = try Request(id: 1, verb: .submit, encoding: submit)
        let decoded = try ClientMessage.decode(payload(try ClientMessage.request(request).frame()))
        guard case .request(let r) = decoded, case .submit(let args, let fds) = try Call.decode(r, fds: [OwnedFD(-1)]) else {
            Issue.record("not a submit")
            return
        }
        #expect(args == submit)
        #expect(fds.count == 1)
        #expect(try JSONValue(encoding: JobRef(job: "j7")) == ["job": "j7"])
        #expect(try JSONValue(encoding: NoArgs()) == [:])
    }

    @Test func serverMessagesRoundTrip() throws {
        let messages: [ServerMessage] = [
            .hello(ServerHello(uid: 1000)),
            .response(Response(id: 3, result: ["jobs": [["id": "j1", "state": "running", "progress": 0.25]]])),
            .response(Response(id: 4, error: ProtocolError(.notFound, "job j9: no such job", detail: "lapwing list shows your jobs"))),
            .event(Event(id: 5, event: ["step": 100, "loss": 0.5])),
            .error(ProtocolError(.badFrame, "malformed JSON", detail: "at byte 3")),
        ]
        for m in messages {
            #expect(try ServerMessage.decode(payload(try m.frame())) == m)
        }
    }

    @Test func responsesAreStrict() {
        expectProtocolError(.unknownField) {
            _ = try ServerMessage.decode(json(#"{"type":"response","id":1,"ok":true,"result":{},"error":{"code":"busy","message":"x"}}"#))
        }
        expectProtocolError(.invalidArgument) {
            _ = try ServerMessage.decode(json(#"{"type":"response","id":1,"ok":false,"error":{"code":"kaboom","message":"x"}}"#))
        }
    }

    @Test func integersAreWrittenWithoutAFraction() throws {
        let text = String(decoding: payload(try ClientMessage.request(Request(id: 12, verb: .list)).frame()), as: UTF8.self)
        #expect(text.contains("\"id\":12"))
        #expect(!text.contains("12.0"))
    }

    @Test func handshakeAcceptsVersionOne() throws {
        let frame = ReceivedFrame(json: payload(try ClientMessage.hello(ClientHello()).frame()))
        let (reply, accepted) = Handshake.answer(frame, peerUID: 1234)
        #expect(accepted)
        #expect(reply == .hello(ServerHello(server: "lapwingd 0.1.0", uid: 1234)))
    }

    @Test func handshakeRefusesAnotherVersion() {
        // Another version's hello may carry fields this version does not know.
        let frame = ReceivedFrame(json: json(#"{"type":"hello","version":2,"client":"lapwing 9","features":["x"]}"#))
        let (reply, accepted) = Handshake.answer(frame, peerUID: 0)
        #expect(!accepted)
        guard case .error(let error) = reply else {
            Issue.record("expected an error, got \(reply)")
            return
        }
        #expect(error.code == .unsupportedVersion)
        #expect(error.detail == "this server speaks version 1")
    }

    @Test func handshakeNeedsAHelloFirst() {
        let frame = ReceivedFrame(json: json(#"{"type":"request","id":1,"verb":"list","args":{}}"#))
        let (reply, accepted) = Handshake.answer(frame, peerUID: 0)
        #expect(!accepted)
        if case .error(let e) = reply { #expect(e.code == .badFrame) } else { Issue.record("\(reply)") }
    }

    @Test func lapwingErrorsMapToWireCodes() {
        #expect(ErrorCode(LapwingError.Code.notFound) == .notFound)
        #expect(ErrorCode(LapwingError.Code.noSpace) == .noSpace)
        #expect(ErrorCode(LapwingError.Code.invalidData) == .invalidArgument)
        #expect(ErrorCode(LapwingError.Code.system) == .internalError)
        let e = ProtocolError(LapwingError.system("open", errno: ENOENT, object: "/data/x"), requestID: 4)
        #expect(e.code == .notFound)
        #expect(e.message == "/data/x: open failed")
        #expect(e.requestID == 4)
        #expect(ErrorCode.allCases.map(\.rawValue) == [
            "bad_frame", "frame_too_large", "unsupported_version", "unknown_verb", "unknown_field", "invalid_argument",
            "not_found", "no_such_job", "permission_denied", "no_space", "busy", "conflict", "internal",
        ])
        #expect(ErrorCode(LapwingError.Code.noSuchJob) == .noSuchJob)
    }
}
