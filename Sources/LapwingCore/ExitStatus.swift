/// The exit statuses of every Lapwing tool (`lapwing`, `lapwingd`, `lapwing-numa`,
/// `lapwing-bench`): one table, so a script can tell the cases apart whichever tool it runs.
public enum ExitStatus {
    /// Done (for `run` and `watch`: the job succeeded).
    public static let success: Int32 = 0
    /// The command failed, or the job it ran or watched failed.
    public static let failure: Int32 = 1
    /// Bad arguments: refused before anything started.
    public static let usage: Int32 = 2
    /// No daemon reachable at the socket.
    public static let unreachable: Int32 = 3
    /// Permission denied: the job is another user's, or the socket is not yours to use.
    public static let permission: Int32 = 4
    /// The job id names no job. Nothing else exits 5.
    public static let noSuchJob: Int32 = 5
    /// Stopped by SIGINT or SIGTERM (Ctrl-C), or the job was interrupted.
    public static let interrupted: Int32 = 130

    /// The table as the tools' help texts print it.
    public static let summary =
        "Exit status: 0 success, 1 failure (or the job failed), 2 bad arguments, 3 no daemon reachable, "
        + "4 permission denied, 5 no such job, 130 interrupted."

    /// The status for an error of this kind.
    public static func of(_ code: LapwingError.Code) -> Int32 {
        switch code {
        case .invalidArgument: usage
        case .permissionDenied: permission
        case .noSuchJob: noSuchJob
        case .invalidData, .notFound, .noSpace, .system, .unsupported, .busy, .internalError: failure
        }
    }
}
