import LapwingCore

/// The error codes of protocol version 1 (their raw values go on the wire).
public enum ErrorCode: String, Codable, Sendable, CaseIterable {
    /// The frame is not one JSON object, or not a message this side accepts (the detail has the reason).
    case badFrame = "bad_frame"
    /// A length prefix over 1 MiB (or zero). The connection is closed after this error.
    case frameTooLarge = "frame_too_large"
    /// The hello named another protocol version. The connection is closed after this error.
    case unsupportedVersion = "unsupported_version"
    case unknownVerb = "unknown_verb"
    /// A field the message or the verb's arguments do not have (the message names it).
    case unknownField = "unknown_field"
    /// A missing field, a field of the wrong type or value, or descriptors where none belong.
    case invalidArgument = "invalid_argument"
    /// A file, a model or another object is not there.
    case notFound = "not_found"
    /// The job id names no job.
    case noSuchJob = "no_such_job"
    case permissionDenied = "permission_denied"
    case noSpace = "no_space"
    case busy = "busy"
    case conflict = "conflict"
    case internalError = "internal"

    /// The wire code for a `LapwingError`.
    public init(_ code: LapwingError.Code) {
        switch code {
        case .invalidArgument, .invalidData, .unsupported: self = .invalidArgument
        case .notFound: self = .notFound
        case .noSuchJob: self = .noSuchJob
        case .permissionDenied: self = .permissionDenied
        case .noSpace: self = .noSpace
        case .busy: self = .busy
        case .system, .internalError: self = .internalError
        }
    }
}

/// A structured error as it travels: code, message, detail.
public struct ProtocolError: Error, Codable, Sendable, Equatable, CustomStringConvertible {
    public var code: ErrorCode
    /// What went wrong, naming the object: `request 3: args: unknown field "jobb"`.
    public var message: String
    /// The reason or a hint: `status takes: job`.
    public var detail: String?
    /// The request the error answers, when it is known (not encoded: it is the envelope's `id`).
    public var requestID: Int?

    enum CodingKeys: String, CodingKey { case code, message, detail }

    public init(_ code: ErrorCode, _ message: String, detail: String? = nil, requestID: Int? = nil) {
        self.code = code
        self.message = message
        self.detail = detail
        self.requestID = requestID
    }

    /// A `LapwingError` as the daemon reports it: same message and detail, the code mapped.
    public init(_ error: LapwingError, requestID: Int? = nil) {
        self.init(ErrorCode(error.code), error.message, detail: error.detail, requestID: requestID)
    }

    public var description: String {
        if let detail { return "\(code.rawValue): \(message): \(detail)" }
        return "\(code.rawValue): \(message)"
    }
}
