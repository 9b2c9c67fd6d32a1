import Foundation
import LapwingCore
import LapwingJob

#if canImport(Glibc)
import Glibc
#endif

/// The daemon's state directory: `jobs/<id>/job.json` (the record, rewritten atomically on
/// every change: temp file, fsync, rename, fsync dir) beside the host's own files
/// (`metrics.jsonl`, `model.safetensors`, `summary.json`, `host.log`).
struct JobStore {
    let root: String

    init(root: String) throws(LapwingError) {
        self.root = root
        try makeDirectories(root + "/jobs", mode: 0o750)
    }

    func directory(of id: String) -> String { root + "/jobs/" + id }

    /// The first save of a new job: its directory and record, or nothing at all.
    func create(_ record: JobRecord) throws(LapwingError) {
        let dir = directory(of: record.id)
        try makeDirectories(dir, mode: 0o750)
        do throws(LapwingError) {
            try save(record)
        } catch {
            try? FileManager.default.removeItem(atPath: dir)
            throw error
        }
    }

    /// Rewrites a job's record atomically (callers serialise saves of one job: `JobManager.persist`).
    func save(_ record: JobRecord) throws(LapwingError) {
        let dir = directory(of: record.id)
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted]
        guard let data = try? enc.encode(record) else {
            throw LapwingError(.internalError, "job \(record.id): cannot encode its record")
        }
        try AtomicFile.write(to: dir + "/job.json", bytes: Array(data), mode: 0o640)
    }

    /// Removes a job's directory: renamed out of the way first (one atomic step: the job is
    /// gone), then deleted; a removal cut short leaves a `.removing-` directory that the next
    /// `loadAll` deletes.
    func remove(_ id: String) throws(LapwingError) {
        let dir = directory(of: id)
        let doomed = root + "/jobs/.removing-\(id)-\(UInt32.random(in: 0...UInt32.max))"
        guard rename(dir, doomed) == 0 else { throw LapwingError.system("rename", errno: errno, object: dir) }
        do {
            try FileManager.default.removeItem(atPath: doomed)
        } catch {
            throw LapwingError(.system, "job \(id): its files could not all be deleted (\(doomed)): \(error)")
        }
    }

    /// Every saved record; unreadable ones are reported through `problem` and skipped.
    func loadAll(problem: (String) -> Void) -> [JobRecord] {
        let dir = root + "/jobs"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return [] }
        var out: [JobRecord] = []
        for name in names.sorted() where name.hasPrefix(".removing-") {
            try? FileManager.default.removeItem(atPath: "\(dir)/\(name)")
        }
        for name in names.sorted() where !name.hasPrefix(".") {
            let path = "\(dir)/\(name)/job.json"
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            do {
                out.append(try JSONDecoder().decode(JobRecord.self, from: data))
            } catch {
                problem("\(path): unreadable job record (\(error)); skipped")
            }
        }
        return out
    }
}
