/// The verbs of protocol version 1.
public enum Verb: String, Codable, Sendable, CaseIterable {
    case submit, list, status, watch, pause, resume, cancel, checkpoint, remove, export, logs, topology, version

    /// Verbs that send events before their final response.
    public var isStreaming: Bool {
        switch self {
        case .watch: true
        default: false
        }
    }

    /// Verbs whose request frame carries descriptors (one per `files` entry of their args).
    public var takesDescriptors: Bool { self == .submit || self == .resume }
}

/// Arguments of a verb, read strictly from the request's `args` object.
public protocol RequestArgs: Encodable, Sendable, Equatable {
    /// Every field the args object may have.
    static var fields: [String] { get }
    init(reading reader: JSONObjectReader) throws(ProtocolError)
}

extension RequestArgs {
    /// Reads `args` strictly (`unknown_field`, `invalid_argument`, naming the field).
    public static func decode(_ args: JSONValue, context: String = "args", requestID: Int? = nil) throws(ProtocolError) -> Self {
        try Self(reading: try JSONObjectReader(args, context: context, allowed: fields, requestID: requestID))
    }
}

/// The args of topology and version: `{}`.
public struct NoArgs: RequestArgs {
    public static let fields: [String] = []
    public init() {}
    public init(reading reader: JSONObjectReader) throws(ProtocolError) {}
}

/// The args of status, watch, pause, resume, cancel, export and logs: `{"job":"j42"}`.
public struct JobRef: RequestArgs, Codable {
    public static let fields = ["job"]
    public var job: String

    public init(job: String) { self.job = job }

    public init(reading reader: JSONObjectReader) throws(ProtocolError) {
        job = try reader.string("job")
        guard !job.isEmpty else {
            throw ProtocolError(.invalidArgument, "\(reader.context): field \"job\" is empty", requestID: reader.requestID)
        }
    }
}

/// The args of list: `{}` for the newest jobs, `{"before":"j42","limit":50}` for the page of
/// jobs submitted before j42. A page holds at most `limit` jobs (default and most: 100) and
/// at most `ListArgs.pageBytes` of JSON, oldest first; a client pages back with `before` set to
/// the first job of the last page until a page comes back empty.
public struct ListArgs: RequestArgs, Codable {
    public static let fields = ["before", "limit"]
    public static let maxLimit = 100
    /// A page's JSON stays under this, far below the frame limit, however long its records are.
    public static let pageBytes = 512 << 10
    public var before: String?
    public var limit: Int

    public init(before: String? = nil, limit: Int = ListArgs.maxLimit) {
        self.before = before
        self.limit = limit
    }

    /// The JSON array of one page: the newest of items 0..<end (`item(k)` gives item k's JSON
    /// text) that fit `limit` and `budget` bytes (at least one), oldest first.
    public static func page(
        before end: Int, limit: Int, budget: Int = pageBytes, item: (Int) throws(ProtocolError) -> [UInt8]
    ) throws(ProtocolError) -> [UInt8] {
        var parts: [[UInt8]] = []
        var bytes = 2
        var k = end - 1
        while k >= 0 && parts.count < limit {
            let json = try item(k)
            if !parts.isEmpty && bytes + json.count + 1 > budget { break }
            parts.append(json)
            bytes += json.count + 1
            k -= 1
        }
        var out: [UInt8] = [UInt8(ascii: "[")]
        out.reserveCapacity(bytes)
        for (n, part) in parts.reversed().enumerated() {
            if n > 0 { out.append(UInt8(ascii: ",")) }
            out += part
        }
        out.append(UInt8(ascii: "]"))
        return out
    }

    public init(reading reader: JSONObjectReader) throws(ProtocolError) {
        before = reader.contains("before") ? try reader.string("before") : nil
        limit = reader.contains("limit") ? try reader.int("limit") : Self.maxLimit
        guard (1...Self.maxLimit).contains(limit) else {
            throw ProtocolError(
                .invalidArgument, "\(reader.context): field \"limit\" is \(limit)",
                detail: "1 to \(Self.maxLimit)", requestID: reader.requestID)
        }
    }
}

/// The args of export: `{"job":"j42"}` for the model, `{"job":"j42","what":"metrics"}` for the
/// evaluations (JSON lines).
public struct ExportArgs: RequestArgs, Codable {
    public enum What: String, Codable, Sendable, CaseIterable {
        case model, metrics
    }

    public static let fields = ["job", "what"]
    public var job: String
    public var what: What

    public init(job: String, what: What = .model) {
        self.job = job
        self.what = what
    }

    public init(reading reader: JSONObjectReader) throws(ProtocolError) {
        job = try JobRef(reading: reader).job
        guard reader.contains("what") else {
            what = .model
            return
        }
        let w = try reader.string("what")
        guard let what = What(rawValue: w) else {
            throw ProtocolError(
                .invalidArgument, "\(reader.context): field \"what\" is \"\(w)\"",
                detail: "one of: \(What.allCases.map(\.rawValue).joined(separator: ", "))", requestID: reader.requestID)
        }
        self.what = what
    }
}

/// What one descriptor attached to a submit is: `{"role":"train","name":"data/train.svm"}`.
public struct FileRole: Codable, Sendable, Equatable {
    public static let fields = ["role", "name"]
    /// What the daemon uses it for: "train", "test", "train-images", "train-labels", ...
    public var role: String
    /// The client's path, for messages only: the daemon never opens it.
    public var name: String

    public init(role: String, name: String) {
        self.role = role
        self.name = name
    }
}

/// The args of resume: `{"job":"j42"}` for a paused job; for a job that ended (interrupted,
/// failed or cancelled) and left a checkpoint, also its data files again, as submit sends them
/// (`files`, with a descriptor each): the daemon gave back the first ones when the job ended.
public struct ResumeArgs: RequestArgs, Codable {
    public static let fields = ["job", "files"]
    public var job: String
    public var files: [FileRole]

    public init(job: String, files: [FileRole] = []) {
        self.job = job
        self.files = files
    }

    public init(reading reader: JSONObjectReader) throws(ProtocolError) {
        job = try JobRef(reading: reader).job
        files = reader.contains("files") ? try FileRole.list(reader) : []
    }
}

extension FileRole {
    /// The `files` array of `reader`'s object, each entry read strictly.
    static func list(_ reader: JSONObjectReader) throws(ProtocolError) -> [FileRole] {
        var files: [FileRole] = []
        for (i, item) in try reader.array("files").enumerated() {
            let r = try JSONObjectReader(
                item, context: "\(reader.context).files[\(i)]", allowed: FileRole.fields, requestID: reader.requestID)
            files.append(FileRole(role: try r.string("role"), name: try r.string("name")))
        }
        guard files.count <= ControlProtocol.maxDescriptorsPerFrame else {
            throw ProtocolError(
                .invalidArgument, "\(reader.context): \(files.count) files",
                detail: "a frame carries at most \(ControlProtocol.maxDescriptorsPerFrame) descriptors",
                requestID: reader.requestID)
        }
        return files
    }
}

/// The args of submit: the job spec (opaque here; the daemon reads it), what each attached
/// descriptor is, in the order they are attached to the frame, and `priority` (optional,
/// default 0): where the job goes in its owner's queue, within `SubmitArgs.priorities` (higher
/// first); the daemon also checks it against the owner's MaxPriority.
public struct SubmitArgs: RequestArgs, Codable {
    public static let fields = ["spec", "files", "priority"]
    /// Every priority a request may carry: -100 (last) to 100 (first); 0 is the default.
    public static let priorities = -100...100
    public var spec: JSONValue
    public var files: [FileRole]
    public var priority: Int?

    public init(spec: JSONValue, files: [FileRole], priority: Int? = nil) {
        self.spec = spec
        self.files = files
        self.priority = priority
    }

    public init(reading reader: JSONObjectReader) throws(ProtocolError) {
        spec = try reader.object("spec")
        files = try FileRole.list(reader)
        priority = reader.contains("priority") ? try reader.int("priority") : nil
        if let priority, !Self.priorities.contains(priority) {
            throw ProtocolError(
                .invalidArgument, "\(reader.context): field \"priority\" is \(priority)",
                detail: "\(Self.priorities.lowerBound) to \(Self.priorities.upperBound)", requestID: reader.requestID)
        }
    }
}

/// A request read for its verb: what the daemon switches on.
public enum Call: Sendable {
    /// The descriptors are in the order of `SubmitArgs.files`, one each.
    case submit(SubmitArgs, files: [OwnedFD])
    case list(ListArgs)
    case status(JobRef)
    case watch(JobRef)
    case pause(JobRef)
    /// The descriptors are in the order of `ResumeArgs.files`, one each (none for a paused job).
    case resume(ResumeArgs, files: [OwnedFD])
    case cancel(JobRef)
    case checkpoint(JobRef)
    case remove(JobRef)
    case export(ExportArgs)
    case logs(JobRef)
    case topology
    case version

    public var verb: Verb {
        switch self {
        case .submit: .submit
        case .list: .list
        case .status: .status
        case .watch: .watch
        case .pause: .pause
        case .resume: .resume
        case .cancel: .cancel
        case .checkpoint: .checkpoint
        case .remove: .remove
        case .export: .export
        case .logs: .logs
        case .topology: .topology
        case .version: .version
        }
    }

    /// Reads the request's args for its verb and checks the descriptors that came with its frame.
    /// On an error every descriptor is closed, and the error carries the request's id.
    public static func decode(_ request: Request, fds: [OwnedFD] = []) throws(ProtocolError) -> Call {
        do {
            return try decodeArgs(request, fds: fds)
        } catch {
            for fd in fds { fd.close() }
            throw error
        }
    }

    private static func decodeArgs(_ request: Request, fds: [OwnedFD]) throws(ProtocolError) -> Call {
        let id = request.id
        let context = "request \(id) (\(request.verb.rawValue)): args"
        if !request.verb.takesDescriptors && !fds.isEmpty {
            throw ProtocolError(
                .invalidArgument, "request \(id) (\(request.verb.rawValue)): \(fds.count) descriptors attached",
                detail: "only submit and resume take descriptors", requestID: id)
        }
        func job() throws(ProtocolError) -> JobRef { try JobRef.decode(request.args, context: context, requestID: id) }
        func none() throws(ProtocolError) { _ = try NoArgs.decode(request.args, context: context, requestID: id) }
        /// One attached descriptor per described file, in order.
        func matchFiles(_ files: [FileRole]) throws(ProtocolError) {
            guard files.count == fds.count else {
                throw ProtocolError(
                    .invalidArgument,
                    "request \(id) (\(request.verb.rawValue)): \(files.count) files described, \(fds.count) descriptors attached",
                    detail: "attach one descriptor per entry of \"files\", in order", requestID: id)
            }
        }
        switch request.verb {
        case .submit:
            let args = try SubmitArgs.decode(request.args, context: context, requestID: id)
            try matchFiles(args.files)
            return .submit(args, files: fds)
        case .list: return .list(try ListArgs.decode(request.args, context: context, requestID: id))
        case .status: return .status(try job())
        case .watch: return .watch(try job())
        case .pause: return .pause(try job())
        case .resume:
            let args = try ResumeArgs.decode(request.args, context: context, requestID: id)
            try matchFiles(args.files)
            return .resume(args, files: fds)
        case .cancel: return .cancel(try job())
        case .checkpoint: return .checkpoint(try job())
        case .remove: return .remove(try job())
        case .export: return .export(try ExportArgs.decode(request.args, context: context, requestID: id))
        case .logs: return .logs(try job())
        case .topology: try none(); return .topology
        case .version: try none(); return .version
        }
    }
}
