import Foundation
import LapwingCore
import LapwingJob

/// A job's training state on disk, to continue from (`lapwing run --resume-from`): every vector
/// of every replica in the arena (the replicas themselves and the algorithm's state vectors:
/// anchors, slow momentum, exchange state), and every worker's step and sample counters, which
/// are the learning-rate schedule's clock and the sample budget's.
///
/// Format: safetensors (`checkpoint.safetensors` beside the model), one F32 tensor per vector,
/// named `replica.R.vector.V`, with metadata `format` = `lapwing-checkpoint`, `version` = 1,
/// `job`, `model`, `algorithm`, `parameters`, `replicas`, `vectors`, `workers`, `samples`
/// (trained in all: the workers' counters, so a step in flight at a periodic checkpoint is
/// trained again after a resume), `steps`, `worker_samples` and `first_losses` (the divergence
/// check's yardsticks, Float bits; comma-separated, one per worker). Written
/// atomically (a temp file of a unique name, fsync, rename, fsync of the directory): a crash
/// while writing leaves the previous checkpoint whole.
///
/// What it does not hold: the workers' private momentum (a resumed job restarts it at zero) and
/// their positions in their sample orders (a resumed worker draws a fresh order, as a replaced
/// one does). Periodic checkpoints are taken while the workers write, like the host's
/// evaluations (Hogwild!-consistent); the one at a job's end is taken after they stopped.
public enum Checkpoint {
    public static let fileName = "checkpoint.safetensors"

    static func write(_ shared: SharedState, spec: JobSpec, replicas: Int, to path: String) throws(LapwingError) {
        let d = shared.parameterCount
        let v = shared.needs.vectorsPerReplica
        var tensors: [SafeTensors.Tensor] = []
        for r in 0..<replicas {
            for k in 0..<v {
                let p = k == 0 ? shared.replica(r) : shared.vector(k, ofReplica: r)
                tensors.append(SafeTensors.Tensor(name: "replica.\(r).vector.\(k)", shape: [d], values: Array(UnsafeBufferPointer(start: p, count: d))))
            }
        }
        let counters = (0..<shared.workers).map { shared.counters(slot: $0) }
        try SafeTensors.write(
            tensors,
            metadata: [
                "format": "lapwing-checkpoint", "version": "1", "job": spec.id, "model": spec.model,
                "algorithm": spec.algorithm.description, "parameters": "\(d)", "replicas": "\(replicas)", "vectors": "\(v)",
                "workers": "\(shared.workers)", "samples": "\(counters.reduce(0) { $0 + $1.samples })",
                "steps": counters.map { "\($0.steps)" }.joined(separator: ","),
                "worker_samples": counters.map { "\($0.samples)" }.joined(separator: ","),
                "first_losses": (0..<shared.workers).map { "\(shared.firstLossBits(slot: $0))" }.joined(separator: ","),
            ], to: path)
    }

    /// Loads `path` into a fresh arena of the same shape (errors name the file and the field
    /// that differs); returns the samples already trained.
    @discardableResult
    static func restore(from path: String, into shared: SharedState, spec: JobSpec, replicas: Int) throws(LapwingError) -> Int {
        let (tensors, meta) = try SafeTensors.read(path)
        func field(_ name: String) throws(LapwingError) -> String {
            guard let value = meta[name] else {
                throw LapwingError(.invalidData, "\(path): metadata field \"\(name)\" is missing", detail: "not a Lapwing checkpoint")
            }
            return value
        }
        func expect(_ name: String, _ wanted: String) throws(LapwingError) {
            let found = try field(name)
            guard found == wanted else {
                throw LapwingError(
                    .invalidArgument, "\(path): metadata field \"\(name)\" is \(found), this job has \(wanted)",
                    detail: "resume with the same model, algorithm, workers and replicas")
            }
        }
        try expect("format", "lapwing-checkpoint")
        try expect("version", "1")
        try expect("model", spec.model)
        try expect("parameters", "\(shared.parameterCount)")
        try expect("replicas", "\(replicas)")
        try expect("vectors", "\(shared.needs.vectorsPerReplica)")
        try expect("workers", "\(shared.workers)")
        let steps = try numbers(field("steps"), "steps", path)
        let samples = try numbers(field("worker_samples"), "worker_samples", path)
        guard steps.count == shared.workers, samples.count == shared.workers, let claimed = Int(try field("samples")), claimed >= 0
        else { throw LapwingError(.invalidData, "\(path): the counters in its metadata do not match its \(shared.workers) workers") }
        let d = shared.parameterCount
        for r in 0..<replicas {
            for k in 0..<shared.needs.vectorsPerReplica {
                let name = "replica.\(r).vector.\(k)"
                guard let t = tensors.first(where: { $0.name == name }), t.values.count == d else {
                    throw LapwingError(.invalidData, "\(path): tensor \"\(name)\" is missing or not \(d) floats")
                }
                let p = k == 0 ? shared.replica(r) : shared.vector(k, ofReplica: r)
                t.values.withUnsafeBufferPointer { p.update(from: $0.baseAddress!, count: d) }
            }
        }
        for w in 0..<shared.workers { shared.restoreCounters(slot: w, steps: steps[w], samples: samples[w]) }
        // The divergence check's yardsticks: the first losses of the job's start.
        if let text = meta["first_losses"] {
            let bits = try numbers(text, "first_losses", path)
            guard bits.count == shared.workers, bits.allSatisfy({ $0 <= Int(UInt32.max) }) else {
                throw LapwingError(.invalidData, "\(path): metadata field \"first_losses\" does not match its \(shared.workers) workers")
            }
            for w in 0..<shared.workers { shared.restoreFirstLoss(slot: w, bits: UInt32(bits[w])) }
        }
        shared.restoreClaimed(claimed)
        return claimed
    }

    private static func numbers(_ text: String, _ name: String, _ path: String) throws(LapwingError) -> [Int] {
        var out: [Int] = []
        for part in text.split(separator: ",") {
            guard let n = Int(part), n >= 0 else {
                throw LapwingError(.invalidData, "\(path): metadata field \"\(name)\": '\(part)' is not a count")
            }
            out.append(n)
        }
        return out
    }
}
