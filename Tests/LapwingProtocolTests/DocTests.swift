import Foundation
import LapwingProtocol
import Testing

/// Every JSON example in docs/protocol.md is a message this library reads.
@Suite struct DocTests {
    @Test func protocolDocExamplesDecode() throws {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/protocol.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        var inBlock = false
        var count = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("```") {
                inBlock = line == "```json"
                continue
            }
            guard inBlock else { continue }
            let bytes = Array(line.utf8)
            let fromClient = line.contains(#""client":"#) || line.contains(#""type":"request""#)
            if fromClient {
                #expect(throws: Never.self, "\(line)") { _ = try ClientMessage.decode(bytes) }
            } else {
                #expect(throws: Never.self, "\(line)") { _ = try ServerMessage.decode(bytes) }
            }
            count += 1
        }
        #expect(count == 9)
    }
}
