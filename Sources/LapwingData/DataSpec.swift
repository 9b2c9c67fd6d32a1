import LapwingCore

/// A data set named on a command line:
///
///     idx:DIR[;maxbytes=SIZE]                    MNIST-style directory (train and t10k files)
///     libsvm:TRAIN[,TEST][;features=N][;labels=K][;maxbytes=SIZE]
///     csv:TRAIN[,TEST][;label=N|NAME][;header|;noheader][;delim=C|tab][;labels=K][;maxbytes=SIZE]
///
/// where K is auto, binary, multiclass or real, and SIZE the most bytes read from each file
/// (after inflating a gzip file), with an optional K, M, G or T (default `ReadLimit.defaultBytes`). A test set gets the training set's feature
/// dimension and label kind (sparse data widens to the larger dimension of the two).
public struct DataSpec: Sendable, Equatable {
    public enum Format: String, Sendable, Equatable {
        case idx, libsvm, csv
    }

    public var format: Format
    /// The training file (the directory for `idx`).
    public var train: String
    public var test: String?
    public var libsvm: LIBSVMOptions
    public var csv: CSVOptions
    /// Label options of the training set (the test set follows the training set).
    public var labels: LabelOptions
    /// The most bytes read from each file (nil: `ReadLimit.defaultBytes`).
    public var maxBytes: Int?
    /// The text it was parsed from.
    public var text: String

    public init(
        format: Format, train: String, test: String? = nil, libsvm: LIBSVMOptions = LIBSVMOptions(),
        csv: CSVOptions = CSVOptions(), labels: LabelOptions = LabelOptions(), text: String? = nil
    ) {
        self.format = format
        self.train = train
        self.test = test
        self.libsvm = libsvm
        self.csv = csv
        self.labels = labels
        self.text = text ?? "\(format.rawValue):\(train)\(test.map { "," + $0 } ?? "")"
    }

    public static func parse(_ s: String) throws(LapwingError) -> DataSpec {
        func bad(_ field: String, _ why: String) -> LapwingError {
            LapwingError(.invalidArgument, "data spec '\(s)': \(field): \(why)")
        }
        guard let colon = s.firstIndex(of: ":") else {
            throw bad("format", "expected FORMAT:PATH with FORMAT idx, libsvm or csv")
        }
        let fname = String(s[..<colon])
        guard let format = Format(rawValue: fname) else {
            throw bad("format", "unknown format '\(fname)' (expected idx, libsvm or csv)")
        }
        var parts = s[s.index(after: colon)...].split(separator: ";", omittingEmptySubsequences: false).map(String.init)
        let paths = parts.removeFirst().split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        if paths.count > 2 { throw bad("paths", "expected TRAIN or TRAIN,TEST, got \(paths.count) paths") }
        if paths[0].isEmpty { throw bad("train", "empty path") }
        if paths.count == 2 && paths[1].isEmpty { throw bad("test", "empty path") }
        if format == .idx && paths.count == 2 {
            throw bad("paths", "idx takes one directory (it holds both the train and the t10k files)")
        }
        var spec = DataSpec(format: format, train: paths[0], test: paths.count == 2 ? paths[1] : nil, text: s)
        for opt in parts {
            let kv = opt.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let key = kv[0]
            let value = kv.count == 2 ? kv[1] : nil
            func need() throws(LapwingError) -> String {
                guard let value, !value.isEmpty else { throw bad(key, "needs a value (\(key)=...)") }
                return value
            }
            switch (format, key) {
            case (_, ""): throw bad("options", "empty option")
            case (_, "labels"):
                let v = try need()
                guard let k = LabelOptions.Kind(rawValue: v) else {
                    throw bad("labels", "'\(v)' is not auto, binary, multiclass or real")
                }
                spec.labels.kind = k
            case (_, "maxbytes"):
                let v = try need()
                guard let n = ReadLimit.parseSize(v) else {
                    throw bad("maxbytes", "'\(v)' is not a size (a positive number of bytes, optionally with K, M, G or T)")
                }
                spec.maxBytes = n
            case (.libsvm, "features"):
                let v = try need()
                guard let n = Int(v), n > 0 else { throw bad("features", "'\(v)' is not a positive integer") }
                spec.libsvm.featureCount = n
            case (.csv, "label"):
                let v = try need()
                spec.csv.labelColumn = Int(v).map { .index($0) } ?? .name(v)
            case (.csv, "header"):
                if value != nil { throw bad("header", "takes no value") }
                spec.csv.hasHeader = true
            case (.csv, "noheader"):
                if value != nil { throw bad("noheader", "takes no value") }
                spec.csv.hasHeader = false
            case (.csv, "delim"):
                let v = try need()
                if v == "tab" {
                    spec.csv.delimiter = UInt8(ascii: "\t")
                } else if v.utf8.count == 1, let c = v.utf8.first, c != UInt8(ascii: "\"") {
                    spec.csv.delimiter = c
                } else {
                    throw bad("delim", "'\(v)' is not one character or 'tab'")
                }
            default:
                throw bad(key, "unknown option for \(format.rawValue)")
            }
        }
        return spec
    }

    /// Loads the training set and, if named, the test set.
    public func load() throws(LapwingError) -> (train: Dataset, test: Dataset?) {
        switch format {
        case .idx:
            let (tr, te) = try IDXReader.loadDirectory(train, options: labels, maxBytes: maxBytes)
            return (tr, te)
        case .libsvm:
            var o = libsvm
            o.labels = labels
            o.maxBytes = maxBytes
            let tr = try LIBSVMReader.load(path: train, options: o)
            guard let test else { return (tr, nil) }
            o.labels = .matching(tr.labelKind)
            let te = try LIBSVMReader.load(path: test, options: o)
            return try reconcile(tr, te)
        case .csv:
            var o = csv
            o.labels = labels
            o.maxBytes = maxBytes
            let tr = try CSVReader.load(path: train, options: o)
            guard let test else { return (tr, nil) }
            o.labels = .matching(tr.labelKind)
            let te = try CSVReader.load(path: test, options: o)
            return try reconcile(tr, te)
        }
    }

    /// Gives both sets the same feature dimension and class count.
    func reconcile(_ tr: Dataset, _ te: Dataset) throws(LapwingError) -> (train: Dataset, test: Dataset?) {
        var tr = tr
        var te = te
        if tr.cols != te.cols {
            guard tr.isSparse else {
                throw LapwingError(
                    .invalidData,
                    "data spec '\(text)': test: \(te.source) has \(te.cols) features but \(tr.source) has \(tr.cols)")
            }
            let c = max(tr.cols, te.cols)
            tr = tr.reshaped(cols: c)
            te = te.reshaped(cols: c)
        }
        if case .multiclass(let a) = tr.labelKind, case .multiclass(let b) = te.labelKind, a != b {
            let k = LabelKind.multiclass(classes: max(a, b))
            tr = tr.reshaped(labelKind: k)
            te = te.reshaped(labelKind: k)
        }
        return (tr, te)
    }
}
