import LapwingCore

/// Loading a data spec from descriptors that someone else opened: the CLI opens the files with
/// its user's rights and passes the descriptors to the daemon (SCM_RIGHTS), which hands them to
/// the job host; nobody but the client ever opens the client's paths.
extension DataSpec {
    /// An input file of a spec: its role and the path the client names.
    public struct InputFile: Codable, Sendable, Equatable {
        public var role: String
        public var path: String
        public init(role: String, path: String) {
            self.role = role
            self.path = path
        }
    }

    /// The files this spec reads, by role: `train-images`, `train-labels`, `test-images`,
    /// `test-labels` for idx; `train` and `test` otherwise.
    public func inputFiles() throws(LapwingError) -> [InputFile] {
        switch format {
        case .idx:
            let paths = try IDXReader.directoryPaths(train)
            return zip(["train-images", "train-labels", "test-images", "test-labels"], paths).map {
                InputFile(role: $0, path: $1)
            }
        case .libsvm, .csv:
            return [InputFile(role: "train", path: train)] + (test.map { [InputFile(role: "test", path: $0)] } ?? [])
        }
    }

    /// Loads from open descriptors keyed by role (as `inputFiles()` names them); `names` give
    /// the client's paths for messages. The descriptors stay open.
    public func load(descriptors: [String: Int32], names: [String: String]) throws(LapwingError) -> (
        train: Dataset, test: Dataset?
    ) {
        func fd(_ role: String) throws(LapwingError) -> (Int32, String) {
            guard let fd = descriptors[role] else {
                throw LapwingError(.invalidArgument, "data spec '\(text)': no descriptor for the \(role) file")
            }
            return (fd, names[role] ?? role)
        }
        switch format {
        case .idx:
            let (ti, tin) = try fd("train-images"), (tl, tln) = try fd("train-labels")
            let (si, sin) = try fd("test-images"), (sl, sln) = try fd("test-labels")
            let trainSet = try IDXReader.load(imagesFD: ti, imagesName: tin, labelsFD: tl, labelsName: tln, options: labels, maxBytes: maxBytes)
            let pair = try IDXReader.loadPair(
                train: trainSet,
                test: { (kind: LabelKind) throws(LapwingError) -> Dataset in
                    try IDXReader.load(
                        imagesFD: si, imagesName: sin, labelsFD: sl, labelsName: sln, options: .matching(kind),
                        maxBytes: maxBytes)
                })
            return (pair.train, pair.test)
        case .libsvm:
            var o = libsvm
            o.labels = labels
            o.maxBytes = maxBytes
            let (a, an) = try fd("train")
            let tr = try LIBSVMReader.load(fd: a, name: an, options: o)
            guard test != nil else { return (tr, nil) }
            o.labels = .matching(tr.labelKind)
            let (b, bn) = try fd("test")
            return try reconcile(tr, LIBSVMReader.load(fd: b, name: bn, options: o))
        case .csv:
            var o = csv
            o.labels = labels
            o.maxBytes = maxBytes
            let (a, an) = try fd("train")
            let tr = try CSVReader.load(fd: a, name: an, options: o)
            guard test != nil else { return (tr, nil) }
            o.labels = .matching(tr.labelKind)
            let (b, bn) = try fd("test")
            return try reconcile(tr, CSVReader.load(fd: b, name: bn, options: o))
        }
    }
}
