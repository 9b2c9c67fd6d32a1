#if canImport(Glibc)
import Glibc
#endif

/// The one error type of the project: a code, a message that names the object
/// (segment, path, pid, node, line) and the reason, and the underlying cause.
///
/// Environment failures throw a `LapwingError`; programmer mistakes trap.
public struct LapwingError: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Code: String, Codable, Sendable {
        /// A user-supplied argument or option is wrong.
        case invalidArgument = "invalid_argument"
        /// An input file is malformed (the message names the file and line or byte offset).
        case invalidData = "invalid_data"
        /// A file, a model or another object is not there.
        case notFound = "not_found"
        /// A job id names no job (the one error that makes the CLI exit 5).
        case noSuchJob = "no_such_job"
        case permissionDenied = "permission_denied"
        /// Not enough memory, shared memory or disk for the request.
        case noSpace = "no_space"
        /// A system call failed for another reason (the detail names it and errno).
        case system = "system"
        case unsupported = "unsupported"
        case busy = "busy"
        case internalError = "internal"
    }

    public var code: Code
    /// What went wrong, naming the object: "/dev/shm/lapwing.42: posix_fallocate of 2.0 GiB failed".
    public var message: String
    /// The underlying cause, if any: "No space left on device (errno 28)".
    public var detail: String?
    /// The errno behind a system failure.
    public var errno: Int32?

    public init(_ code: Code, _ message: String, detail: String? = nil, errno: Int32? = nil) {
        self.code = code
        self.message = message
        self.detail = detail
        self.errno = errno
    }

    /// A failed system call on `object`, classified by errno.
    public static func system(_ call: String, errno err: Int32, object: String) -> LapwingError {
        let code: Code
        switch err {
        case ENOENT: code = .notFound
        case EACCES, EPERM: code = .permissionDenied
        case ENOSPC, ENOMEM, EFBIG: code = .noSpace
        case EBUSY, EEXIST: code = .busy
        case ENOSYS, EOPNOTSUPP: code = .unsupported
        default: code = .system
        }
        return LapwingError(
            code, "\(object): \(call) failed", detail: "\(errnoDescription(err)) (errno \(err))", errno: err)
    }

    public var description: String {
        if let detail { return "\(message): \(detail)" }
        return message
    }
}

/// The text of an errno value, as strerror gives it.
public func errnoDescription(_ err: Int32) -> String {
    guard let s = strerror(err) else { return "errno \(err)" }
    return String(cString: s)
}
