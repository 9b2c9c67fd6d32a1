import Foundation
import LapwingDaemon
import LapwingProtocol
import LapwingTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A small seeded generator (xorshift64*), so that a failing run can be repeated from its seed.
struct FuzzRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }
}

/// Frames, good and bad, for the fuzz test.
struct FuzzFrames {
    let valid: [[UInt8]]

    init() throws {
        let requests: [Request] = [
            Request(id: 1, verb: .version), Request(id: 2, verb: .list), Request(id: 3, verb: .topology),
            Request(id: 4, verb: .status, args: ["job": "nosuchjob"]), Request(id: 5, verb: .list, args: ["limit": 1]),
            Request(id: 6, verb: .cancel, args: ["job": "nosuchjob"]), Request(id: 7, verb: .logs, args: ["job": "nosuchjob"]),
        ]
        valid = try [ClientMessage.hello(ClientHello()).frame()] + requests.map { try ClientMessage.request($0).frame() }
    }

    /// A valid frame with one of several kinds of damage.
    func mutated(_ rng: inout FuzzRandom) -> [UInt8] {
        var f = valid.randomElement(using: &rng)!
        switch Int.random(in: 0..<9, using: &rng) {
        case 0:  // bit flips in the JSON
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 4..<f.count, using: &rng)
                f[i] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &rng)
            }
        case 1:  // bytes inserted, the prefix fixed up
            var body = Array(f.dropFirst(4))
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                body.insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...body.count, using: &rng))
            }
            f = (try? Frame.encode(json: body)) ?? f
        case 2:  // a duplicate key
            f = (try? Frame.encode(json: Array(#"{"id":9,"#.utf8) + f.dropFirst(5))) ?? f
        case 3:  // a length prefix that lies (short: the rest reads as the next frame)
            let n = UInt32(max(1, f.count - 4 - Int.random(in: 1...10, using: &rng)))
            f[0...3] = [UInt8(n >> 24), UInt8((n >> 16) & 0xff), UInt8((n >> 8) & 0xff), UInt8(n & 0xff)]
        case 4:  // a zero or oversize prefix
            f[0...3] = Bool.random(using: &rng) ? [0, 0, 0, 0] : [0x7f, 0xff, 0xff, 0xff]
        case 5:  // garbage
            f = (0..<Int.random(in: 1...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        case 6:  // nesting past the limit
            f = (try? Frame.encode(json: [UInt8](repeating: UInt8(ascii: "["), count: 300) + [UInt8](repeating: UInt8(ascii: "]"), count: 300))) ?? f
        case 7:  // a large frame of a long string (valid JSON, not a message)
            let body = Array(#"{"type":"request","id":1,"verb":"version","args":{"x":""#.utf8)
                + [UInt8](repeating: UInt8(ascii: "a"), count: Int.random(in: 1000...600_000, using: &rng)) + Array(#""}}"#.utf8)
            f = (try? Frame.encode(json: body)) ?? f
        default:  // a valid frame, twice in one write
            f += f
        }
        return f
    }
}

extension DaemonTests {
    @Suite struct FuzzTests {
        /// A real daemon with a training job, against about 12 s of mutated frames, descriptor
        /// floods, partial frames, silent and slow clients (deadlines shortened to 1 s for a hello
        /// and 2 s for a frame). Throughout, a fresh client is answered and the daemon's
        /// descriptors stay within 150 + 128 + 64 of the baseline (the test holds at most 150
        /// connections); afterwards, with the offending connections still open on the test's side,
        /// the daemon's descriptors come back within 4 of the baseline and its RSS within 48 MiB,
        /// and the job's sample count keeps increasing.
        @Test func mixedAbuseLeavesTheDaemonServingAndTheJobTraining() throws {
            let d = try DaemonHarness(tag: "fuzz")
            defer { d.cleanUp() }
            try d.start(extraEnvironment: ["LAPWING_CONTROL_HELLO_TIMEOUT_MS": "1000", "LAPWING_CONTROL_FRAME_TIMEOUT_MS": "2000"])
            let pid = try #require(d.daemon?.pid)
            let job = try d.submit(["--model", "softmax", "--workers", "1", "--epochs", "10000"]).id
            let probe = try ControlClient(path: d.socket)
            func samples() -> Int {
                ((try? probe.call(.status, args: JobRef(job: job)))?["progress"]?["samples"]?.intValue) ?? 0
            }
            #expect(eventually(timeout: 120) { samples() > 0 }, "the job trains")
            let (fds0, rss0) = (openDescriptors(pid), residentBytes(pid))
            let seed = UInt64.random(in: 1...UInt64.max)
            print("fuzz: seed \(seed); daemon fds \(fds0), RSS \(rss0 >> 20) MiB")
            var rng = FuzzRandom(seed: seed)
            let frames = try FuzzFrames()
            let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
            defer { close(null) }

            // Connections the daemon should close by itself (silent, unfinished, flooding) and
            // ones the test closes (mutated frames, slow clients once done).
            var offenders: [UnixConnection] = []
            var others: [UnixConnection] = []
            var slow: [(c: UnixConnection, frame: [UInt8], sent: Int)] = []
            var counts: [String: Int] = [:]
            var (peakFDs, peakRSS) = (fds0, rss0)
            let start = Date()
            var nextProbe = start
            while Date().timeIntervalSince(start) < 12 {
                if Date() >= nextProbe {
                    nextProbe = Date().addingTimeInterval(1)
                    #expect(d.daemon?.wait(timeout: 0) == nil, "lapwingd died (seed \(seed))")
                    #expect(answersVersion(d.socket), "a fresh client is answered during the fuzz (seed \(seed))")
                    peakFDs = max(peakFDs, openDescriptors(pid))
                    peakRSS = max(peakRSS, residentBytes(pid))
                }
                // Slow clients: one more byte each round.
                for k in slow.indices.reversed() {
                    let s = slow[k]
                    if !trySend(s.c, [s.frame[s.sent]]) || s.sent + 1 == s.frame.count {
                        others.append(s.c)
                        slow.remove(at: k)
                    } else {
                        slow[k].sent += 1
                    }
                }
                if offenders.count + others.count + slow.count >= 150 {
                    (others.isEmpty ? offenders.removeFirst() : others.removeFirst()).close()
                }
                let kind = Int.random(in: 0..<10, using: &rng)
                guard let c = try? UnixConnection.connect(path: d.socket) else {
                    counts["connect failed", default: 0] += 1
                    continue
                }
                switch kind {
                case 0...3:
                    counts["mutated", default: 0] += 1
                    if Bool.random(using: &rng) { _ = trySend(c, frames.valid[0]) }
                    for _ in 0..<Int.random(in: 1...3, using: &rng) { _ = trySend(c, frames.mutated(&rng)) }
                    try? c.setNonBlocking()
                    _ = try? c.readAvailable()
                    others.append(c)
                case 4, 5:
                    counts["descriptor flood", default: 0] += 1
                    if Bool.random(using: &rng) { _ = trySend(c, frames.valid[0]) }
                    _ = trySend(c, [0x00, 0x10, 0x00, 0x00])
                    var messages = 0
                    while messages < 20 && trySend(c, [0x20], fds: [Int32](repeating: null, count: 16)) { messages += 1 }
                    offenders.append(c)
                case 6, 7:
                    counts["partial frame", default: 0] += 1
                    if Bool.random(using: &rng) { _ = trySend(c, frames.valid[0]) }
                    let n = Int.random(in: 4...200_000, using: &rng)
                    var partial = [UInt8](repeating: 0x20, count: n)
                    partial[0...3] = [0x00, 0x10, 0x00, 0x00]
                    _ = trySend(c, partial)
                    offenders.append(c)
                case 8:
                    counts["silent", default: 0] += 1
                    offenders.append(c)
                default:
                    counts["slow", default: 0] += 1
                    let request = frames.valid.dropFirst().randomElement(using: &rng)!
                    slow.append((c, frames.valid[0] + request, 0))
                }
            }
            print("fuzz: \(counts.sorted { $0.key < $1.key }); peak daemon fds \(peakFDs), RSS \(peakRSS >> 20) MiB")
            #expect(peakFDs <= fds0 + 150 + 128 + 64, "descriptors \(fds0) → peak \(peakFDs) (seed \(seed))")
            #expect(peakRSS <= rss0 + 128 << 20, "RSS \(rss0) → peak \(peakRSS) (seed \(seed))")

            // The test closes its well-behaved connections and keeps the offenders open: the
            // daemon must close those by itself (deadlines, limits).
            (others + slow.map(\.c)).forEach { $0.close() }
            let samples1 = samples()
            #expect(answersVersion(d.socket), "the daemon answers after the fuzz (seed \(seed))")
            #expect(eventually(timeout: 30) { openDescriptors(pid) <= fds0 + 4 },
                    "descriptors back near \(fds0): \(openDescriptors(pid)) (seed \(seed))")
            #expect(eventually(timeout: 30) { residentBytes(pid) <= rss0 + 48 << 20 },
                    "RSS back near \(rss0 >> 20) MiB: \(residentBytes(pid) >> 20) MiB (seed \(seed))")
            #expect(eventually(timeout: 60) { samples() > samples1 }, "the job keeps training (seed \(seed))")
            print("fuzz: afterwards daemon fds \(openDescriptors(pid)), RSS \(residentBytes(pid) >> 20) MiB")
            offenders.forEach { $0.close() }
            _ = try? probe.call(.cancel, args: JobRef(job: job))
        }
    }
}
