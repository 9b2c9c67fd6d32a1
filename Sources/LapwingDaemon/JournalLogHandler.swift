import CLapwing
import Foundation
import LapwingCore
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// lapwingd's log under systemd: each entry goes to the journal through its native protocol
/// (a datagram of `FIELD=value` lines to /run/systemd/journal/socket), with its priority by
/// severity and structured fields: `JOB_ID=` on every line about a job, `USER=` and `USER_ID=`
/// for the user who made a change (`lapwing cancel` by uid 1000...), so that
/// `journalctl -u lapwingd JOB_ID=j3-ab12` shows one job's story. Without the journal (a
/// terminal, a test) the daemon writes plain lines to stderr instead (`bootstrap`).
public struct JournalLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let identifier: String
    let socketPath: String

    public init(identifier: String, socketPath: String = "/run/systemd/journal/socket") {
        self.identifier = identifier
        self.socketPath = socketPath
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let (level, message, extra, file, function, line) = (
            event.level, event.message, event.metadata, event.file, event.function, event.line
        )
        var fields: [(String, String)] = [
            ("MESSAGE", "\(message)"), ("PRIORITY", "\(Self.priority(level))"), ("SYSLOG_IDENTIFIER", identifier),
            ("CODE_FILE", file), ("CODE_LINE", "\(line)"), ("CODE_FUNC", function),
        ]
        let all = metadata.merging(extra ?? [:]) { $1 }
        for (key, value) in all.sorted(by: { $0.key < $1.key }) {
            if let name = Self.fieldName(key) { fields.append((name, "\(value)")) }
        }
        let bytes = Self.encode(fields)
        _ = bytes.withUnsafeBytes { lw_datagram_send(socketPath, $0.baseAddress, $0.count) }
    }

    /// syslog priorities: 2 critical ... 7 debug.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .critical: 2
        case .error: 3
        case .warning: 4
        case .notice: 5
        case .info: 6
        case .debug, .trace: 7
        }
    }

    /// A metadata key as a journal field name (upper case letters, digits and underscores, not
    /// starting with one); nil for keys that cannot be one.
    static func fieldName(_ key: String) -> String? {
        let name = String(key.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
        guard let first = name.first, first != "_", !first.isNumber, name.count <= 64 else { return nil }
        return name
    }

    /// The native protocol: `NAME=value\n`, or for a value with a newline `NAME\n`, its length
    /// as 64-bit little endian, the value, `\n`.
    public static func encode(_ fields: [(String, String)]) -> [UInt8] {
        var out: [UInt8] = []
        for (name, value) in fields {
            let v = Array(value.utf8)
            out += Array(name.utf8)
            if v.contains(0x0A) {
                out.append(0x0A)
                withUnsafeBytes(of: UInt64(v.count).littleEndian) { out += $0 }
                out += v
            } else {
                out.append(0x3D)
                out += v
            }
            out.append(0x0A)
        }
        return out
    }

    /// True when stderr is connected to the journal (systemd sets JOURNAL_STREAM to its
    /// device:inode), so entries should go through the native protocol.
    public static func stderrIsJournal() -> Bool {
        guard let value = getenv("JOURNAL_STREAM").map({ String(cString: $0) }) else { return false }
        var st = stat()
        guard fstat(2, &st) == 0 else { return false }
        return value == "\(st.st_dev):\(st.st_ino)"
    }
}

/// What the daemon's log lines about jobs carry besides their text, read off the text the
/// job manager writes ("job j3-ab12: ... by uid 1000"): the job's id, the acting user, and a
/// severity (failures and kills are warnings, a job's end a notice).
public enum JobLogFields {
    public static func metadata(for message: String) -> (Logger.Level, Logger.Metadata) {
        var meta: Logger.Metadata = [:]
        if message.hasPrefix("job ") {
            let id = message.dropFirst(4).prefix { $0 != ":" && $0 != " " }
            if !id.isEmpty { meta["job_id"] = .string(String(id)) }
        }
        if let r = message.range(of: "by uid ") {
            let digits = message[r.upperBound...].prefix { $0.isNumber }
            if let uid = UInt32(digits) {
                meta["user_id"] = .string(String(uid))
                if let name = UserDatabase.name(of: uid) { meta["user"] = .string(name) }
            }
        }
        let lower = message.lowercased()
        let level: Logger.Level =
            lower.contains("ended: failed") || lower.contains("could not") || lower.contains("killed")
                || lower.contains("died") ? .warning : lower.contains(" ended: ") ? .notice : .info
        return (level, meta)
    }
}
