import ArgumentParser
import Foundation
import LapwingJob
import LapwingProtocol

#if canImport(Glibc)
import Glibc
#endif

extension CompletionKind {
    /// The ids of the daemon's jobs, for the shells' completion of a job argument.
    static var jobIDs: CompletionKind {
        .custom { words, _, prefix in JobCompletion.ids(words: words, prefix: prefix) }
    }
}

/// Completion of job ids: the daemon the command line names (`--socket`, else as `DaemonClient`
/// finds one) is asked for its newest jobs. Silent and quick when none answers: no socket is no
/// answer, and a daemon that does not answer within half a second is none either.
enum JobCompletion {
    static func ids(words: [String], prefix: String) -> [String] {
        var socket: String?
        for (i, w) in words.enumerated() {
            if w == "--socket", i + 1 < words.count { socket = words[i + 1] }
            if w.hasPrefix("--socket=") { socket = String(w.dropFirst("--socket=".count)) }
        }
        let path = DaemonClient.socketPath(socket)
        guard access(path, F_OK) == 0,
            let client = try? ControlClient(path: path, timeout: .milliseconds(500)),
            let page = try? client.call(.list, args: ListArgs()).decode(as: [JobRecord].self)
        else { return [] }
        // Newest first: the job one is most likely to name.
        return page.reversed().map(\.id).filter { $0.hasPrefix(prefix) }
    }
}
