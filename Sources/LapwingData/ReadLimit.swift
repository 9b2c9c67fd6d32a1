import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// The most bytes a reader takes from one input file (after inflating a gzip file). Without a
/// limit an endless input (`/dev/zero`, `/dev/urandom`, `yes |`) is read until memory runs out
/// and the job dies to the OOM killer with no word of why. The data spec option `maxbytes=SIZE`
/// raises or lowers it for one job.
public enum ReadLimit {
    /// The fixed cap of the default.
    public static let cap = 16 << 30

    /// A quarter of physical memory, at most 16 GiB: the bytes read plus the parsed arrays (about
    /// as large again) then stay within half of the machine.
    public static var defaultBytes: Int {
        let pages = sysconf(Int32(_SC_PHYS_PAGES)), size = sysconf(Int32(_SC_PAGESIZE))
        guard pages > 0, size > 0 else { return cap }
        let (total, overflow) = pages.multipliedReportingOverflow(by: size)
        return overflow ? cap : min(cap, total / 4)
    }

    /// Parses a size: a whole number of bytes with an optional suffix K, M, G or T (powers of
    /// 1024, also KiB/MiB/GiB/TiB); nil when it is not one.
    public static func parseSize(_ text: String) -> Int? {
        var digits = Substring(text)
        var unit = 1
        for (suffixes, scale) in [(["k", "kib"], 1 << 10), (["m", "mib"], 1 << 20), (["g", "gib"], 1 << 30),
                                  (["t", "tib"], 1 << 40)] {
            if let s = suffixes.first(where: { text.lowercased().hasSuffix($0) }) {
                digits = text.dropLast(s.count)
                unit = scale
                break
            }
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let n = Int(digits), n > 0 else { return nil }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: unit)
        return overflow ? nil : bytes
    }

    /// The error for an input beyond `limit`: `read` bytes were read (or, with `whole`, the
    /// file's size is `read`).
    static func exceeded(name: String, limit: Int, read: Int, whole: Bool, inflated: Bool = false) -> LapwingError {
        let what =
            whole
            ? "is \(formatBytes(read)) (\(read) bytes)"
            : "did not end within \(inflated ? "the first " : "")\(formatBytes(read)) (\(read) bytes\(inflated ? " inflated" : " read"))"
        return LapwingError(
            .noSpace,
            "\(name): \(what), more than the read limit of \(formatBytes(limit)) (\(limit) bytes)",
            detail: "the limit is a quarter of physical memory, at most 16 GiB; the data spec option maxbytes=SIZE changes it")
    }
}
