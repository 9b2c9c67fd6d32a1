import Foundation

/// A systemd-style INI file read line by line: `[Section]` headers, `Key = value` lines, `#` and
/// `;` comments (whole lines, or ` #` after a value), blank lines. It knows no keys: the reader
/// of each kind of file (the daemon's settings, a job's configuration) checks them, and every
/// error names the file and the line.
public struct KeyValueFile: Sendable {
    public struct Entry: Sendable, Equatable {
        /// The section the line is in (nil before the first header).
        public let section: String?
        public let key: String
        public let value: String
        /// 1-based.
        public let line: Int

        /// An error about this line: "FILE:LINE: why".
        public func error(in file: String, _ why: String) -> LapwingError {
            LapwingError(.invalidArgument, "\(file):\(line): \(why)")
        }
    }

    /// The file's name as errors show it.
    public let name: String
    public let entries: [Entry]
    /// The headers in the order they appear, with their lines.
    public let sections: [(name: String, line: Int)]

    /// Reads `path` (at most `maxBytes`, UTF-8).
    public static func read(_ path: String, maxBytes: Int = 1 << 20) throws(LapwingError) -> KeyValueFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LapwingError.system("open", errno: errno == 0 ? ENOENT : errno, object: path)
        }
        guard data.count <= maxBytes else { throw LapwingError(.invalidData, "\(path): larger than \(maxBytes >> 10) KiB") }
        guard let text = String(data: data, encoding: .utf8) else { throw LapwingError(.invalidData, "\(path): not UTF-8 text") }
        return try parse(text, name: path)
    }

    public static func parse(_ text: String, name: String) throws(LapwingError) -> KeyValueFile {
        var entries: [Entry] = []
        var sections: [(name: String, line: Int)] = []
        var section: String?
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            func bad(_ why: String) -> LapwingError { LapwingError(.invalidArgument, "\(name):\(n + 1): \(why)") }
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") {
                guard line.hasSuffix("]"), line.count > 2 else { throw bad("a section header is [Name]") }
                section = String(line.dropFirst().dropLast())
                sections.append((section!, n + 1))
                continue
            }
            guard let eq = line.firstIndex(of: "=") else { throw bad("expected Key = value, a [Section] or a # comment") }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty else { throw bad("a key is missing before '='") }
            var value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            if let hash = value.range(of: " #") { value = value[..<hash.lowerBound].trimmingCharacters(in: .whitespaces) }
            entries.append(Entry(section: section, key: key, value: value, line: n + 1))
        }
        return KeyValueFile(name: name, entries: entries, sections: sections)
    }

    /// `yes`/`no` (and true/false, on/off, 1/0) as a Bool, or an error naming the line.
    public func flag(_ e: Entry) throws(LapwingError) -> Bool {
        switch e.value.lowercased() {
        case "yes", "true", "on", "1": return true
        case "no", "false", "off", "0": return false
        default: throw e.error(in: name, "\(e.key) = \(e.value): needs yes or no")
        }
    }
}
