import LapwingProtocol
import Testing

/// The hand-written JSON parser and writer: strict RFC 8259, errors that say where and why.
@Suite struct JSONTextTests {
    func parse(_ text: String) throws -> JSONValue { try JSONValue.parse(Array(text.utf8)) }

    func reason(_ bytes: [UInt8]) -> String {
        do {
            _ = try JSONValue.parse(bytes)
            return "parsed"
        } catch {
            #expect(error.code == .badFrame && error.message == "malformed JSON")
            return error.detail ?? ""
        }
    }

    func reason(_ text: String) -> String { reason(Array(text.utf8)) }

    @Test func valuesOfEveryKindParse() throws {
        let v = try parse(#" { "a" : [1, -2.5, 3e2, 0, -0.0, true, false, null], "b": {"c": "d"}, "e": [] , "f": {} } "#)
        #expect(v == ["a": [1, -2.5, 300, 0, 0, true, false, nil], "b": ["c": "d"], "e": [], "f": [:]])
        #expect(try parse("12345678901") == .number(12_345_678_901))
        #expect(try parse("\"\"") == "")
    }

    @Test func escapesAndUnicodeDecode() throws {
        #expect(try parse(#""a\"b\\c\/d\b\f\n\r\t""#) == .string("a\"b\\c/d\u{8}\u{c}\n\r\t"))
        #expect(try parse(#""\u00e9\u4e2d\ud83d\ude00""#) == .string("é中😀"))
        #expect(try parse("\"é中😀\"") == .string("é中😀"))
    }

    @Test func malformedTextSaysWhereAndWhy() {
        #expect(reason(#"{"type":x}"#) == "unexpected 'x' at character 8 (expected a value)")
        #expect(reason(#"{"id":1,"#).contains("end of file at character 8"))
        #expect(reason("[1,]").contains("character 3"))
        #expect(reason("{1:2}").contains("member name"))
        #expect(reason(#"{"a" 1}"#).contains("':'"))
        #expect(reason("[1 2]").contains("',' or ']'"))
        #expect(reason("{} x").contains("after the value"))
        #expect(reason("01").contains("leading zeros"))
        #expect(reason("1.").contains("after '.'"))
        #expect(reason("1e").contains("exponent"))
        #expect(reason("-").contains("digit"))
        #expect(reason("1e999").contains("out of range"))
        #expect(reason("tru").contains("expected true"))
        #expect(reason("\"a\u{1}\"").contains("control characters"))
        #expect(reason(#""\x""#).contains("not an escape"))
        #expect(reason(#""\u12""#).contains("hex digits"))
        #expect(reason(#""\ud83d""#).contains("unpaired surrogate"))
        #expect(reason(#""\ude00""#).contains("unpaired surrogate"))
        #expect(reason("\"abc").contains("unterminated string"))
        #expect(reason([0x22, 0xFF, 0xFE, 0x22]).contains("invalid UTF-8"))
        #expect(reason("").contains("end of file at character 0"))
    }

    @Test func deepNestingIsRefusedNotRecursedInto() throws {
        #expect(reason(String(repeating: "[", count: 100_000)).contains("nesting deeper than 256"))
        let ok = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        _ = try parse(ok)
    }

    @Test func writerIsCompactSortedAndRoundTrips() throws {
        let v: JSONValue = ["z": 1, "a": [true, nil, 2.5, -7], "m": "q\"\\\n\u{1}/é"]
        #expect(v.jsonText() == #"{"a":[true,null,2.5,-7],"m":"q\"\\\n\u0001/é","z":1}"#)
        #expect(try JSONValue.parse(v.jsonBytes()) == v)
        for d in [0.1, 1e-7, 123456.789, -3.0e300, 9_007_199_254_740_993.0] {
            #expect(try JSONValue.parse(JSONValue.number(d).jsonBytes()) == .number(d), "\(d)")
        }
        #expect(JSONValue.number(.nan).jsonText() == "null")
    }

    @Test func messagesFrameTheSameJSONTheyDecodeFrom() throws {
        let m = ServerMessage.response(Response(id: 3, result: ["state": "running"]))
        let frame = try m.frame()
        #expect(try ServerMessage.decode(Array(frame.dropFirst(4))) == m)
        let e = ServerMessage.error(ProtocolError(.badFrame, "malformed JSON", detail: "at byte 3"))
        #expect(try ServerMessage.decode(Array(e.frame().dropFirst(4))) == e)
    }
}

extension JSONTextTests {
    @Test func aResponseFramedFromCachedTextIsTheSameFrame() throws {
        let result: JSONValue = ["id": "j1-ab", "state": "running", "progress": ["epoch": 1.5, "loss": 0.25], "files": [:]]
        let direct = try ServerMessage.response(Response(id: 42, result: result)).frame()
        #expect(try Frame.response(id: 42, resultJSON: result.jsonBytes()) == direct)
        let list: JSONValue = [result, result]
        #expect(try Frame.response(id: 7, resultJSON: list.jsonBytes()) == ServerMessage.response(Response(id: 7, result: list)).frame())
    }
}
