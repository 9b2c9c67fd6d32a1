import LapwingCore
import LapwingData
import LapwingEngine
import LapwingJob
import LapwingProtocol

/// What a client may put in a `submit`, checked before the daemon does anything with it: the
/// client is hostile. The spec is read strictly (an unknown field is refused with its name, and
/// the fields the daemon sets itself are refused as such), and the descriptors must be exactly
/// the files the data spec needs, one per role: the job host reads its data through them and
/// never opens a path.
public enum SubmitCheck {
    /// Fields of a job spec a client may set, and those of its nested objects (the algorithm's
    /// object holds its knobs, which the algorithm checks).
    static let clientFields = JobSpec.fields.filter { !JobSpec.launcherFields.contains($0) }
    static let nestedFields: [String: [String]] = [
        "schedule": LearningRateSchedule.fields,
        "sgd": SGDRule.fields,
        "machine": ["rank", "size", "timeout", "rendezvous", "meeting"],
    ]
    /// Fields the daemon sets: a client that sends one is refused, not ignored.
    static let daemonFields = JobSpec.launcherFields
    /// Longest role and file name a client may describe (names are for messages only).
    static let maxRoleBytes = 64
    static let maxNameBytes = 1024

    /// The client's spec, read strictly; `id` is a placeholder until the daemon names the job.
    public static func spec(_ json: JSONValue, requestID: Int) throws(ProtocolError) -> JobSpec {
        let context = "request \(requestID) (submit): args.spec"
        guard case .object(var fields) = json else {
            throw ProtocolError(.invalidArgument, "\(context): expected an object, found \(json.typeName)", requestID: requestID)
        }
        if let own = fields.keys.sorted().first(where: { daemonFields.contains($0) }) {
            throw ProtocolError(
                .invalidArgument, "\(context): field \"\(own)\" is set by the daemon, not by a client",
                detail: "a client may set: \(clientFields.joined(separator: ", "))", requestID: requestID)
        }
        _ = try JSONObjectReader(json, context: context, allowed: clientFields, requestID: requestID)
        for (key, allowed) in nestedFields.sorted(by: { $0.key < $1.key }) {
            if let inner = fields[key] {
                _ = try JSONObjectReader(inner, context: "\(context).\(key)", allowed: allowed, requestID: requestID)
            }
        }
        fields["id"] = .string("pending")
        let spec: JobSpec
        do throws(ProtocolError) {
            spec = try JSONValue.object(fields).decode(as: JobSpec.self)
        } catch {
            throw ProtocolError(.invalidArgument, "\(context): \(error.message)", detail: error.detail, requestID: requestID)
        }
        do throws(LapwingError) { try machine(spec.machine) } catch {
            throw ProtocolError(.invalidArgument, "\(context).machine: \(error.message)", detail: error.detail, requestID: requestID)
        }
        return spec
    }

    /// A client's `machine`: only a rank of a job submitted to several daemons (`lapwing submit
    /// --hosts`), which meets the others through rank 0's ompi-server (`meeting`). A rendezvous
    /// file is refused: the daemon acts on no client's path.
    static func machine(_ m: MachineRank?) throws(LapwingError) {
        guard let m else { return }
        guard m.rendezvous == nil else {
            throw LapwingError(.invalidArgument, "a rendezvous file is for lapwing run; a daemon's rank meets the others through \"meeting\"")
        }
        guard m.meeting != nil else {
            throw LapwingError(
                .invalidArgument, "a daemon's job across machines needs \"meeting\" (it has no mpirun to make its MPI world)",
                detail: "submit it with lapwing submit --hosts")
        }
        try m.validate()
    }

    /// The roles of the files a data spec reads, in `DataSpec.inputFiles()` order, without
    /// touching the file system (the paths are the client's, not the daemon's to look at).
    public static func roles(of data: DataSpec) -> [String] {
        switch data.format {
        case .idx: ["train-images", "train-labels", "test-images", "test-labels"]
        case .libsvm, .csv: ["train"] + (data.test == nil ? [] : ["test"])
        }
    }

    /// Checks that `files` name each role the data spec needs exactly once, and nothing else.
    public static func files(_ files: [(role: String, name: String)], data: String) throws(LapwingError) {
        let need = roles(of: try DataSpec.parse(data))
        var seen: Set<String> = []
        for (i, f) in files.enumerated() {
            guard !f.role.isEmpty, f.role.utf8.count <= maxRoleBytes, f.role.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f })
            else {
                throw LapwingError(
                    .invalidArgument, "files[\(i)]: role of \(f.role.utf8.count) bytes is not a role",
                    detail: "expected one of: \(need.joined(separator: ", "))")
            }
            guard f.name.utf8.count <= maxNameBytes, !f.name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
            else {
                throw LapwingError(
                    .invalidArgument, "files[\(i)] (\(f.role)): name is longer than \(maxNameBytes) bytes or holds control characters")
            }
            guard seen.insert(f.role).inserted else {
                throw LapwingError(.invalidArgument, "files[\(i)]: role \"\(f.role)\" is given twice", detail: "one descriptor per role")
            }
            guard need.contains(f.role) else {
                throw LapwingError(
                    .invalidArgument, "files[\(i)]: role \"\(f.role)\" is not one the data spec reads",
                    detail: "data spec \(data) reads: \(need.joined(separator: ", "))")
            }
        }
        let missing = need.filter { !seen.contains($0) }
        guard missing.isEmpty else {
            throw LapwingError(
                .invalidArgument, "no descriptor for the \(missing.joined(separator: ", ")) file\(missing.count == 1 ? "" : "s")",
                detail: "the client opens the data files and attaches them: the daemon never opens a client's path")
        }
    }

}
