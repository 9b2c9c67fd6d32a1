import CLapwing
import Foundation
import LapwingCore
import LapwingData
import LapwingEngine
import LapwingJob
import LapwingModels

#if canImport(Glibc)
import Glibc
#endif

// lapwing-bench: one-core throughput of the hot loops, as one JSON object on stdout.
//   lapwing-bench [--seconds S] [--shared DIR]
// DIR is the project's ../shared (for debian-sections); without it the sparse case says so.
//   lapwing-bench control-load --socket PATH --job ID [--clients N] [--interval S] [--seconds S]
// N clients of a daemon's control socket until stdin closes (see ControlLoad.swift).
//   lapwing-bench partial-step [--seconds S] [--batch B]
// lpp-sgd's partial steps against full ones, per block (see PartialStep.swift).
//   lapwing-bench barrier [--processes W] [--rounds N] [--spins S]
// µs per round of an arena barrier with 2 (and W) forked processes, beside a baseline (BarrierBench.swift).
//   lapwing-bench compression [--seconds S]
// GB/s of the quantizer's pack and unpack+accumulate beside a memcpy (CompressionBench.swift).
//   lapwing-bench sketch [--seconds S]
// Sketched SGD's count sketch: accumulate GB/s beside memcpy, top-k recovery (SketchBench.swift).

if CommandLine.arguments.dropFirst().first == "barrier" {
    var bench = BarrierBench()
    var rest = CommandLine.arguments.dropFirst(2)
    while let a = rest.popFirst() {
        let v = rest.popFirst()
        switch (a, v.flatMap { Int($0) }) {
        case ("--processes", let n?) where n >= 1 && n <= 4096: bench.processes = n == 2 ? [2] : [2, n]
        case ("--rounds", let n?) where n >= 2 && n < 1 << 24: bench.rounds = n
        case ("--spins", let n?) where n >= 0: bench.spins = n
        default:
            writeError("lapwing-bench barrier: bad argument \(a)\(v.map { " \($0)" } ?? "")\n"
                + "usage: lapwing-bench barrier [--processes 1...4096] [--rounds 2..<16777216] [--spins S>=0]\n")
            exit(2)
        }
    }
    do {
        let report = try bench.run()
        let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys, .prettyPrinted])
        print(String(decoding: json, as: UTF8.self))
        exit(0)
    } catch {
        writeError("lapwing-bench barrier: \(error)\n")
        exit(1)
    }
}

if CommandLine.arguments.dropFirst().first == "control-load" {
    var load = ControlLoad(socket: "", job: "")
    var rest = CommandLine.arguments.dropFirst(2)
    while let a = rest.popFirst() {
        let v = rest.popFirst()
        switch (a, v) {
        case ("--socket", let v?): load.socket = v
        case ("--job", let v?): load.job = v
        case ("--clients", let v?) where Int(v).map({ $0 > 0 }) == true: load.clients = Int(v)!
        case ("--interval", let v?) where Double(v).map({ $0 > 0 }) == true: load.interval = Double(v)!
        case ("--seconds", let v?) where Double(v).map({ $0 > 0 }) == true: load.seconds = Double(v)!
        default:
            writeError("lapwing-bench control-load: bad argument \(a)\(v.map { " \($0)" } ?? "")\n"
                + "usage: lapwing-bench control-load --socket PATH --job ID [--clients N>0] [--interval SECONDS>0] [--seconds S>0]\n")
            exit(2)
        }
    }
    guard !load.socket.isEmpty, !load.job.isEmpty else {
        writeError("lapwing-bench control-load: --socket and --job are required\n")
        exit(2)
    }
    do {
        let report = try load.run()
        let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
        print(String(decoding: json, as: UTF8.self))
        exit(0)
    } catch {
        writeError("lapwing-bench control-load: \(error)\n")
        exit(1)
    }
}

_ = lw_flush_denormals()  // as the job host does for its workers
if CommandLine.arguments.dropFirst().first == "compression" {
    exit(runCompressionBench(CommandLine.arguments.dropFirst(2)))
}
if CommandLine.arguments.dropFirst().first == "sketch" {
    exit(runSketchBench(CommandLine.arguments.dropFirst(2)))
}
if CommandLine.arguments.dropFirst().first == "partial-step" {
    exit(runPartialStepBench(CommandLine.arguments.dropFirst(2)))
}
var seconds = 2.0
var sharedDir = "../shared"
var args = CommandLine.arguments.dropFirst()
while let a = args.popFirst() {
    switch a {
    case "--seconds": seconds = Double(args.popFirst() ?? "") ?? seconds
    case "--shared": sharedDir = args.popFirst() ?? sharedDir
    default:
        writeError("usage: lapwing-bench [--seconds S] [--shared DIR]\n")
        exit(2)
    }
}

func log(_ s: String) { writeError("lapwing-bench: \(s)\n") }

/// Gradient steps (gather + forward + backward into the gradient buffer) per second on one core.
func gradientThroughput(model: FeedForwardModel, data: Dataset, batch: Int, seconds: Double) -> [String: Any] {
    var params = [Float](repeating: 0, count: model.parameterCount)
    params.withUnsafeMutableBufferPointer { model.initialize($0, seed: 1) }
    var buffer = BatchBuffer(cols: data.cols, sparse: data.isSparse, capacity: batch)
    let ws = model.makeWorkspace(batchCapacity: batch)
    let grad = model.makeGradientBuffer()
    var rng = SeededGenerator(seed: 9)
    var rows = [Int](repeating: 0, count: batch)
    var samples = 0
    var lossSum = 0.0
    let t0 = monotonicSeconds()
    var elapsed = 0.0
    while elapsed < seconds {
        for _ in 0..<32 {
            for k in 0..<batch { rows[k] = rng.nextIndex(data.rows) }
            data.gather(rows: rows, into: &buffer)
            lossSum += Double(buffer.withBatch { model.gradient(params: params, batch: $0, into: grad, workspace: ws) })
            samples += batch
        }
        elapsed = monotonicSeconds() - t0
    }
    return [
        "model": model.spec.name, "batch": batch, "rows": data.rows, "sparse": data.isSparse,
        "samples_per_second": (Double(samples) / elapsed).rounded(), "seconds": elapsed,
    ]
}

/// Full worker steps (gradient + momentum SGD update into the parameters) per second on one core.
func stepThroughput(model: FeedForwardModel, data: Dataset, batch: Int, seconds: Double, rule: SGDRule) -> [String: Any] {
    let params = UnsafeMutablePointer<Float>.allocate(capacity: model.parameterCount)
    let velocity = UnsafeMutablePointer<Float>.allocate(capacity: model.parameterCount)
    defer {
        params.deallocate()
        velocity.deallocate()
    }
    model.initialize(UnsafeMutableBufferPointer(start: params, count: model.parameterCount), seed: 1)
    velocity.initialize(repeating: 0, count: model.parameterCount)
    var buffer = BatchBuffer(cols: data.cols, sparse: data.isSparse, capacity: batch)
    let ws = model.makeWorkspace(batchCapacity: batch)
    let grad = model.makeGradientBuffer()
    let fused = rule.canFuse(sparse: data.isSparse)
    if fused { grad.accumulate = rule.momentum }
    var rng = SeededGenerator(seed: 9)
    var rows = [Int](repeating: 0, count: batch)
    var samples = 0
    var gradTime = 0.0, updateTime = 0.0
    while gradTime + updateTime < seconds {
        for _ in 0..<32 {
            for k in 0..<batch { rows[k] = rng.nextIndex(data.rows) }
            let t0 = monotonicSeconds()
            data.gather(rows: rows, into: &buffer)
            _ = buffer.withBatch { model.gradient(params: params, batch: $0, into: grad, workspace: ws) }
            let t1 = monotonicSeconds()
            if fused {
                rule.applyFused(rate: 0.01, velocity: grad, to: params)
            } else {
                rule.apply(rate: 0.01, gradient: grad, velocity: rule.momentum > 0 ? velocity : nil, to: params)
            }
            updateTime += monotonicSeconds() - t1
            gradTime += t1 - t0
            samples += batch
        }
    }
    return [
        "model": model.spec.name, "batch": batch, "momentum": Double(rule.momentum), "nesterov": rule.nesterov,
        "momentum_folded_into_gemm": fused,
        "samples_per_second": (Double(samples) / (gradTime + updateTime)).rounded(),
        "update_fraction": updateTime / (gradTime + updateTime),
    ]
}

/// An averaging round over R replicas of d floats, beside a plain memcpy of the same bytes.
func averagingBandwidth(replicas r: Int, count d: Int, seconds: Double) -> [String: Any] {
    let bufs = (0..<r).map { _ -> UnsafeMutablePointer<Float> in
        let p = UnsafeMutablePointer<Float>.allocate(capacity: d)
        p.initialize(repeating: 1, count: d)
        return p
    }
    defer { for b in bufs { b.deallocate() } }
    let kernel = AveragingKernel(replicas: bufs, count: d)
    defer { kernel.deallocate() }
    let src = UnsafeMutablePointer<Float>.allocate(capacity: r * d)
    let dst = UnsafeMutablePointer<Float>.allocate(capacity: r * d)
    src.initialize(repeating: 2, count: r * d)
    dst.initialize(repeating: 0, count: r * d)
    defer {
        src.deallocate()
        dst.deallocate()
    }
    // Interleave the two so that both see the same machine noise.
    var avgTime = 0.0, copyTime = 0.0, rounds = 0
    while avgTime + copyTime < seconds {
        var t = monotonicSeconds()
        kernel.round()
        avgTime += monotonicSeconds() - t
        t = monotonicSeconds()
        memcpy(dst, src, r * d * 4)
        copyTime += monotonicSeconds() - t
        rounds += 1
    }
    // Both move the same bytes: the round reads and writes R*d floats; memcpy reads and writes R*d floats.
    let bytes = Double(kernel.bytesPerRound * rounds)
    let avgGBs = bytes / avgTime / 1e9
    let copyGBs = bytes / copyTime / 1e9
    return [
        "replicas": r, "parameters": d, "rounds": rounds, "averaging_GBps": avgGBs, "memcpy_GBps": copyGBs,
        "ratio_to_memcpy": avgGBs / copyGBs,
    ]
}

do {
    let blas = try BLAS.setUp()
    var report: [String: Any] = [
        "blas": ["corename": blas.corename, "requested": blas.requested as Any, "source": blas.source,
                 "check_passed": blas.checkPassed, "fell_back": blas.fellBack, "threads": blas.threads],
    ]
    var gradients: [[String: Any]] = []
    log("loading Fashion-MNIST")
    let (fashion, _) = try DataSpec.parse("idx:/usr/share/datasets/fashion-mnist").load()
    let mlp = try FeedForwardModel(spec: .parse("mlp:784-256-10"), features: 784, classes: 10)
    for b in [16, 64] {
        log("mlp:784-256-10 batch \(b)")
        gradients.append(gradientThroughput(model: mlp, data: fashion, batch: b, seconds: seconds))
    }
    let sections = sharedDir + "/data/debian-sections/debian-sections.train.gz"
    if FileManager.default.fileExists(atPath: sections) {
        log("loading debian-sections")
        let (train, _) = try DataSpec.parse("libsvm:" + sections).load()
        let softmax = try FeedForwardModel(
            spec: .parse("softmax"), features: train.cols, classes: TrainingDataClasses.of(train.labelKind))
        for b in [1, 16] {
            log("softmax sparse batch \(b)")
            gradients.append(gradientThroughput(model: softmax, data: train, batch: b, seconds: seconds))
        }
    } else {
        report["sparse_note"] = "\(sections) not found: pass --shared DIR for the sparse softmax case"
    }
    report["gradient_one_core"] = gradients
    log("worker steps")
    report["worker_step_one_core"] = [
        stepThroughput(model: mlp, data: fashion, batch: 16, seconds: seconds, rule: SGDRule(momentum: 0.9)),
        stepThroughput(model: mlp, data: fashion, batch: 16, seconds: seconds, rule: SGDRule(momentum: 0.9, nesterov: true)),
        stepThroughput(model: mlp, data: fashion, batch: 16, seconds: seconds, rule: SGDRule(momentum: 0)),
    ]
    log("averaging bandwidth")
    report["averaging"] = [
        averagingBandwidth(replicas: 2, count: mlp.parameterCount, seconds: seconds),
        averagingBandwidth(replicas: 2, count: 76045 * 58 + 58, seconds: seconds),
    ]
    let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys, .prettyPrinted])
    print(String(decoding: json, as: UTF8.self))
} catch let e as LapwingError {
    writeError("lapwing-bench: \(e)\n")
    exit(1)
}
