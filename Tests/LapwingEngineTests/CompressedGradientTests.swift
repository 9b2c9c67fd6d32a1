import Foundation
import LapwingCore
import LapwingJob
import Testing

@testable import LapwingEngine

/// Issue #10 on minibatch (gradient exchange) and overlap-local (anchor exchange): codec pieces
/// on plain buffers, then real jobs against the same job without `--compress`.
@Suite struct CompressedSliceTests {
    /// A slice of a quantized message decodes to the same floats as the whole message over that
    /// slice, reading only the slice's bytes; the slices' bytes add up to the message.
    @Test func quantizedSliceDecodesLikeTheWholeMessage() throws {
        let d = 3 * 512 + 77
        var rng = SeededGenerator(seed: 5)
        let v = (0..<d).map { _ in rng.nextUnitFloat() - 0.5 }
        let storage = UnsafeMutablePointer<Float>.allocate(capacity: d)
        let whole = UnsafeMutablePointer<Float>.allocate(capacity: d)
        let parts = UnsafeMutablePointer<Float>.allocate(capacity: d)
        defer { for p in [storage, whole, parts] { p.deallocate() } }
        for bits in [2, 4, 7] {
            var codec = QuantizedCodec(dimension: d, participants: 1, seed: 9) { _, _, _, _ in bits }
            let buffer = ExchangeBuffer(storage, count: d)
            v.withUnsafeBufferPointer { codec.write(phase: 0, contribution: $0.baseAddress!, into: buffer, participant: 0, progress: 0) }
            whole.initialize(repeating: 0, count: d)
            codec.addSum([buffer], scale: 0.5, into: whole)
            parts.initialize(repeating: 0, count: d)
            var bytes = 0
            for w in 0..<3 {
                let slice = SynchronousPlan.slice(w, of: 3, count: d, alignment: codec.rangeAlignment)
                #expect(slice.lowerBound % 512 == 0)
                codec.addSum([buffer], scale: 0.5, range: slice, into: parts)
                bytes += codec.bytesRead(buffer, range: slice)
            }
            #expect((0..<d).allSatisfy { parts[$0] == whole[$0] }, "\(bits) bits")
            #expect(bytes == Quantizer.compressedBytes(count: d, bits: bits) && bytes + ExchangeBuffer.headerBytes == buffer.used)
        }
    }

    /// overlap-local refuses a compressor of two phases, naming it and why; minibatch takes its
    /// buffers from the compression instead of its dense exchange vector.
    @Test func overlapLocalRefusesSketchAndMinibatchSwapsItsBuffers() throws {
        var spec = JobSpec(
            data: "idx:/d", model: "softmax", algorithm: AlgorithmConfig(name: "overlap-local"),
            compression: AlgorithmConfig(name: "sketch"), workers: 2, id: "c")
        do {
            try Algorithms.check(spec)
            Issue.record("overlap-local accepted --compress sketch")
        } catch {
            #expect(error.message.contains("--compress sketch: overlap-local's workers never wait"), "\(error)")
        }
        spec.compression = AlgorithmConfig(name: "qsgd", knobs: ["qsgd-bits": 4])
        try Algorithms.check(spec)
        spec.algorithm = AlgorithmConfig(name: "minibatch")
        let compressed = Algorithms.arenaNeeds(try Algorithms.resolve(spec), spec: spec, replicas: 1)
        spec.compression = nil
        let plain = Algorithms.arenaNeeds(try Algorithms.resolve(spec), spec: spec, replicas: 1)
        #expect(compressed.exchangeVectorsPerWorker == 2 && plain.exchangeVectorsPerWorker == 1)
    }
}

/// Bytes of a quantized message of d floats at `bits`, header included.
private func message(_ d: Int, bits: Int) -> Int { ExchangeBuffer.headerBytes + Quantizer.compressedBytes(count: d, bits: bits) }

/// Fashion-MNIST softmax, 2 workers at batch 32, one epoch: 938 steps of d = 7850.
private let minibatchJob = [
    "--data", fashionMNIST, "--model", "softmax", "--algorithm", "minibatch", "--workers", "2", "--batch", "32", "--epochs", "1",
    "--eval-every", "0",
]
private let softmaxD = 785 * 10
/// The sketch sized for this small model (its defaults, k = d/1000, suit large ones): 80
/// coordinates a step from 3 x 800 cells and 320 candidates, 0.35 d floats a message.
private let sketchKnobs = ["--sketch-k", "80", "--sketch-rows", "3", "--sketch-columns", "800"]
private let minibatchBaseline = Result { try train(minibatchJob, tag: "cg-mb-none") }

/// Fashion-MNIST mlp:784-64-10, 2 workers, one epoch (overlap-local's own test job).
private let overlapJob = ["--data", fashionMNIST, "--model", "mlp:784-64-10", "--algorithm", "overlap-local", "--workers", "2", "--epochs", "1"]
private let mlpD = 784 * 64 + 64 + 64 * 10 + 10
private let overlapBaseline = Result { try train(overlapJob, tag: "cg-ol-none") }

extension JobTests {
@Suite struct CompressedGradientTests {
    /// minibatch with each compressor: the same steps, an accuracy within 3 points of the
    /// uncompressed run (these jobs are deterministic; the margin is for the rule, not noise),
    /// and the bytes of the messages. Per step, without compression: 4d(2W + 2) (gradients
    /// written, slices of them read, the replica's slices read and written). With a quantizer:
    /// every message written and each read once over the slices, and the replica's 8d as
    /// before, so the gradients' part shrinks 7.9x at 4 bits and the total 2.4x with W = 2.
    @Test(arguments: ["qsgd:4", "dq", "sketch"])
    func minibatchTrainsOnCompressedGradients(compress: String) throws {
        let none = try minibatchBaseline.get()
        let extra = compress == "sketch" ? sketchKnobs : []
        let s = try train(minibatchJob + ["--compress", compress] + extra, tag: "cg-mb-\(compress.prefix(4))")
        #expect(s.outcome == "completed" && s.averagingRounds == none.averagingRounds && s.averagingRounds == 938)
        let (accuracy, reference) = (s.testAccuracy ?? 0, none.testAccuracy ?? 1)
        #expect(accuracy >= reference - 0.03 && reference >= 0.8, "\(compress): \(accuracy) against \(reference)")
        let (d, w, steps) = (softmaxD, 2, s.averagingRounds)
        let bytes = s.bytesExchanged ?? -1
        #expect(none.bytesExchanged == steps * 4 * d * (2 * w + 2))
        let replica = steps * 8 * d
        switch compress {
        case "qsgd:4":
            let gradients = steps * w * (message(d, bits: 4) + Quantizer.compressedBytes(count: d, bits: 4))
            #expect(bytes == gradients + replica)
            let ratio = Double(steps * 8 * d * w) / Double(gradients)
            #expect(ratio > 7.8 && ratio < 8, "gradients \(ratio)x fewer bytes")
        case "dq":
            let fewest = steps * w * (message(d, bits: 2) + Quantizer.compressedBytes(count: d, bits: 2))
            let most = steps * w * (message(d, bits: 8) + Quantizer.compressedBytes(count: d, bits: 8))
            #expect(bytes >= fewest + replica && bytes <= most + replica, "\(bytes)")
        default:
            // Each worker writes its message and reads all W (every sketch, every candidate's
            // values); the k sent coordinates of the replica are read and written once.
            let used = ExchangeBuffer.headerBytes + 4 * (3 * 800 + 320)
            #expect(bytes == steps * (w * (w + 1) * used + 8 * 80), "\(bytes)")
        }
        #expect(s.crossNodeBytes == 0)
    }

    /// overlap-local with qsgd and dq: it trains as without compression (within 4 points: the
    /// rounds depend on timing) and the coordinator reads only messages. Bytes: per round R the
    /// W messages read and the W copies of the anchor's message written, and every pull after
    /// the first reads one (a worker pulls R or R+1 times by the end); without compression the
    /// same count of whole vectors, every pull included.
    @Test(arguments: ["qsgd:4", "dq"])
    func overlapLocalAveragesCompressedSnapshots(compress: String) throws {
        let none = try overlapBaseline.get()
        let s = try train(overlapJob + ["--compress", compress], tag: "cg-ol-\(compress.prefix(4))")
        #expect(s.outcome == "completed" && s.replicas == 2 && s.averagingRounds > 0)
        let (accuracy, reference) = (s.testAccuracy ?? 0, none.testAccuracy ?? 1)
        #expect(accuracy >= reference - 0.04 && accuracy >= 0.78, "\(compress): \(accuracy) against \(reference)")
        let (r, w, vector) = (s.averagingRounds, 2, 4 * mlpD)
        let bytes = s.bytesExchanged ?? -1
        if compress == "qsgd:4" {
            let m = message(mlpD, bits: 4)
            let pulls = bytes - 2 * r * w * m
            #expect(pulls % m == 0 && pulls / m >= w * (r - 1) && pulls / m <= w * r, "\(bytes) bytes, \(r) rounds")
            // Per round against the uncompressed run's: the ratio of a vector to a message,
            // within what the pulls around the last round can move it.
            let ratio = Double(none.bytesExchanged ?? 0) / Double(none.averagingRounds) / (Double(bytes) / Double(r))
            let exact = Double(vector) / Double(m)
            #expect(exact > 7.8 && abs(ratio - exact) <= exact * 1.5 / Double(min(r, none.averagingRounds)), "\(ratio)x, \(r) rounds")
        } else {
            let (fewest, most) = (message(mlpD, bits: 2), message(mlpD, bits: 8))
            #expect(bytes >= (2 * r * w + w * (r - 1)) * fewest && bytes <= 3 * r * w * most, "\(bytes) bytes, \(r) rounds")
        }
        #expect(s.crossNodeBytes == 0)
    }
}
}
