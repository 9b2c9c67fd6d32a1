import Testing

@testable import LapwingArena

/// numa_maps lines of a job's data copies (memfds `lapwing-data.JOB.nodeN`), as Linux 6.1
/// prints them, and lines that are not theirs.
@Suite struct DataCopyMapsTests {
    @Test func aCopysLineGivesItsNodePolicyAndPages() throws {
        let line = "7f5c4b200000 bind:1 file=/memfd:lapwing-data.j-7.node1 (deleted) dirty=45951 active=0 N1=45900 N0=51 kernelpagesize_kB=4"
        let m = try #require(DataCopyPages.parse(line: Substring(line), jobID: "j-7"))
        #expect(m.node == 1 && m.policy == "bind:1" && m.pageBytes == 4096)
        #expect(m.pages == [.init(node: 1, pages: 45900), .init(node: 0, pages: 51)])
        let copy = DataCopyPages(node: m.node, policy: m.policy, bytes: 0, pages: m.pages, readers: [])
        #expect(!copy.isOnItsNode)
        #expect(DataCopyPages(node: 1, policy: "bind:1", bytes: 0, pages: [.init(node: 1, pages: 3)], readers: []).isOnItsNode)
    }

    @Test func otherLinesAreNotCopies() {
        for line in [
            "7f5c4b200000 bind:0 file=/dev/shm/lapwing.j-7 dirty=1 N0=1 kernelpagesize_kB=4",
            "7f5c4b200000 bind:0 file=/memfd:lapwing-data.j-77.node0 (deleted) N0=1 kernelpagesize_kB=4",
            "7f5c4b200000 default file=/memfd:lapwing-data.j-7.nodeX (deleted)",
            "7f5c4b200000 default anon=3 dirty=3 N0=3 kernelpagesize_kB=4",
        ] {
            #expect(DataCopyPages.parse(line: Substring(line), jobID: "j-7") == nil, "\(line)")
        }
    }
}
