import Foundation
import LapwingCore
import LapwingEngine

#if canImport(Glibc)
import Glibc
#endif

// lapwing-bench compression [--seconds S]
// The quantizer's kernels on one core (Compression/Quantizer.swift): quantize+pack and
// unpack+accumulate, for 203,530 floats (mlp:784-256-10) and 4.4M floats, at 4 and 8 bits, beside
// a memcpy and a float axpy (dst += k * src) of the same float bytes, in one run. GB/s are of the
// uncompressed float bytes (4 per float) in every column, so the columns compare directly. Each
// figure is the best of repeated calls over S seconds (default 0.5). One JSON object on stdout.

/// Best seconds per call of `body` over about `seconds` (at least 3 calls).
private func bestTime(seconds: Double, _ body: () -> Void) -> Double {
    var best = Double.infinity
    var calls = 0
    let t0 = monotonicSeconds()
    while calls < 3 || monotonicSeconds() - t0 < seconds {
        let start = monotonicSeconds()
        body()
        best = min(best, monotonicSeconds() - start)
        calls += 1
    }
    return best
}

func compressionCost(count: Int, seconds: Double) -> [String: Any] {
    let src = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
    let dst = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
    defer { src.deallocate(); dst.deallocate() }
    var rng = SeededGenerator(seed: 11)
    for i in 0..<count { src[i] = (rng.nextUnitFloat() * 2 - 1) * 0.01 }
    dst.update(repeating: 0)
    let floatBytes = Double(4 * count)
    func gbps(_ t: Double) -> Double { (floatBytes / t / 1e9 * 100).rounded() / 100 }

    let memcpyTime = bestTime(seconds: seconds) {
        memcpy(dst.baseAddress!, src.baseAddress!, 4 * count)
    }
    let axpyTime = bestTime(seconds: seconds) {
        let s = src.baseAddress!, d = dst.baseAddress!
        for i in 0..<count { d[i] += 0.5 * s[i] }
    }
    var perBits: [[String: Any]] = []
    for bits in [4, 8] {
        let bytes = Quantizer.compressedBytes(count: count, bits: bits)
        let packed = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 64)
        defer { packed.deallocate() }
        var seed: UInt64 = 0
        let quantizeTime = bestTime(seconds: seconds) {
            seed &+= 1
            Quantizer.quantize(UnsafeBufferPointer(src), bits: bits, seed: seed, into: packed)
        }
        let addTime = bestTime(seconds: seconds) {
            Quantizer.add(scaled: 0.5, from: UnsafeRawBufferPointer(packed), bits: bits, into: dst)
        }
        perBits.append([
            "bits": bits, "compressed_bytes": bytes,
            "ratio": (floatBytes / Double(bytes) * 100).rounded() / 100,
            "quantize_pack_gbps": gbps(quantizeTime),
            "unpack_accumulate_gbps": gbps(addTime),
            "quantize_pack_us": (quantizeTime * 1e7).rounded() / 10,
            "unpack_accumulate_us": (addTime * 1e7).rounded() / 10,
        ])
    }
    return [
        "floats": count, "float_bytes": 4 * count,
        "memcpy_gbps": gbps(memcpyTime), "axpy_gbps": gbps(axpyTime),
        "memcpy_us": (memcpyTime * 1e7).rounded() / 10,
        "quantizers": perBits,
    ]
}

func runCompressionBench(_ arguments: ArraySlice<String>) -> Int32 {
    var seconds = 0.5
    var rest = arguments
    while let a = rest.popFirst() {
        switch (a, rest.popFirst()) {
        case ("--seconds", let v?) where Double(v).map({ $0 > 0 && $0 < 3600 }) == true: seconds = Double(v)!
        default:
            writeError("usage: lapwing-bench compression [--seconds S>0]\n")
            return 2
        }
    }
    let cases = [203_530, 4_400_000].map { compressionCost(count: $0, seconds: seconds) }
    let report: [String: Any] = [
        "block_size": Quantizer.blockSize,
        "gbps_of": "float bytes (4 per float), best call",
        "cases": cases,
    ]
    do {
        let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys, .prettyPrinted])
        print(String(decoding: json, as: UTF8.self))
        return 0
    } catch {
        writeError("lapwing-bench compression: \(error)\n")
        return 1
    }
}
