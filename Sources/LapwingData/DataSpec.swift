import LapwingCore

#if canImport(Glibc)
import Glibc
#endif

/// A data spec string, as the CLI takes it:
/// - `idx:DIR`: the MNIST-family IDX files of DIR (train-* and t10k-*);
/// - `libsvm:TRAIN[,TEST]`: LIBSVM files (gzipped or plain);
/// - `csv:TRAIN[,TEST][;label=N|NAME][;header|;noheader]`: CSV files, label column 0 by default.
public struct DataSpec: Sendable, Equatable {
    public enum Format: String, Sendable { case idx, libsvm, csv }

    public var format: Format
    public var train: String
    public var test: String?
    public var csv: CSVReader.Options

    public static func parse(_ text: String) throws(LapwingError) -> DataSpec {
        guard let colon = text.firstIndex(of: ":"), let format = Format(rawValue: String(text[..<colon])) else {
            throw LapwingError(
                .invalidArgument, "--data '\(text)': unknown format",
                detail: "use idx:DIR, libsvm:TRAIN[,TEST] or csv:TRAIN[,TEST][;label=N][;header]")
        }
        var parts = text[text.index(after: colon)...].split(separator: ";", omittingEmptySubsequences: false).map(String.init)
        let files = parts.removeFirst().split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(files.count), files.allSatisfy({ !$0.isEmpty }) else {
            throw LapwingError(.invalidArgument, "--data '\(text)': expected one or two file names after '\(format.rawValue):'")
        }
        var spec = DataSpec(format: format, train: files[0], test: files.count == 2 ? files[1] : nil, csv: .init())
        if format == .idx && spec.test != nil {
            throw LapwingError(.invalidArgument, "--data '\(text)': idx: takes one directory (it holds both sets)")
        }
        for option in parts {
            guard format == .csv else {
                throw LapwingError(.invalidArgument, "--data '\(text)': option '\(option)' applies to csv: only")
            }
            if option == "header" {
                spec.csv.hasHeader = true
            } else if option == "noheader" {
                spec.csv.hasHeader = false
            } else if option.hasPrefix("label=") {
                let v = String(option.dropFirst(6))
                if let k = Int(v), k >= 0 { spec.csv.labelColumn = k } else if !v.isEmpty { spec.csv.labelName = v }
                else { throw LapwingError(.invalidArgument, "--data '\(text)': label= needs a column number or name") }
            } else {
                throw LapwingError(
                    .invalidArgument, "--data '\(text)': unknown option '\(option)' (use label=N, header or noheader)")
            }
        }
        for f in files where access(f, R_OK) != 0 {
            throw LapwingError.system("open", errno: errno, object: f)
        }
        return spec
    }

    /// Reads the files. The test set, if any, gets the training set's feature count (or the
    /// wider of the two for sparse data) and class count.
    public func load() throws(LapwingError) -> (train: Dataset, test: Dataset?) {
        switch format {
        case .idx:
            let (a, b) = try IDXReader.loadDirectory(train)
            return (a, b)
        case .libsvm:
            let a = try LIBSVMReader.load(path: train)
            guard let test else { return (a, nil) }
            var b = try LIBSVMReader.load(path: test, options: .init(labels: .init(minimumClasses: a.classes ?? 0)))
            return Self.agree(a, &b)
        case .csv:
            let a = try CSVReader.load(path: train, options: csv)
            guard let test else { return (a, nil) }
            var opts = csv
            opts.labels.minimumClasses = a.classes ?? 0
            var b = try CSVReader.load(path: test, options: opts)
            guard b.cols == a.cols else {
                throw LapwingError(.invalidData, "\(test): \(b.cols) features, but \(train) has \(a.cols)")
            }
            return Self.agree(a, &b)
        }
    }

    /// Widens both sets to the same feature and class counts.
    static func agree(_ a: Dataset, _ b: inout Dataset) -> (train: Dataset, test: Dataset?) {
        let cols = max(a.cols, b.cols)
        var kind = a.labelKind
        if case .multiclass(let ka) = a.labelKind, case .multiclass(let kb) = b.labelKind, kb > ka { kind = b.labelKind }
        let train = (cols != a.cols || kind != a.labelKind) ? a.widened(to: cols, labelKind: kind) : a
        if cols != b.cols || kind != b.labelKind { b = b.widened(to: cols, labelKind: kind) }
        return (train, b)
    }
}
