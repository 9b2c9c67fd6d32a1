import LapwingCore
import LapwingData

extension ModelSpec {
    /// Checks that the training labels suit this model before anything trains, naming the file
    /// and line of the first label that does not: a binary model (logistic, svm) needs labels
    /// read as binary (two values, -1/+1 or 0/1), a classifier (softmax, mlp) class indices, and
    /// every classifier at least two classes. Without it logistic "trains" on {0, 1.5, 2.8} and
    /// a single-class set scores 100%.
    public func checkLabels(of data: Dataset) throws(LapwingError) {
        let facts = data.labelFacts
        switch loss {
        case .squared:
            return
        case .logistic, .hinge:
            guard data.labelKind == .binary else {
                if let bad = facts.firstNonBinary {
                    throw LapwingError(
                        .invalidData,
                        "\(bad.place): \(bad.problem): model '\(name)' is binary and needs two label values, "
                            + "-1/+1 or 0/1",
                        detail: "softmax or an mlp trains on class labels, leastsquares on real targets")
                }
                throw LapwingError(
                    .invalidData,
                    "\(data.source): the labels were read as \(describe(data.labelKind)), but model '\(name)' is binary",
                    detail: "the labels are -1/+1 or 0/1: read them as binary (the data spec option labels=binary or auto)")
            }
        case .softmax:
            if data.labelKind == .real {
                if let bad = facts.firstNonClass {
                    throw LapwingError(
                        .invalidData,
                        "\(bad.place): \(bad.problem): model '\(name)' needs class labels (non-negative integers)",
                        detail: "leastsquares trains on real targets")
                }
                throw LapwingError(
                    .invalidData,
                    "\(data.source): the labels were read as real targets, but model '\(name)' needs class labels",
                    detail: "read them as classes (the data spec option labels=multiclass or auto)")
            }
        }
        if facts.distinctValues == 1 {
            throw LapwingError(
                .invalidData,
                "\(data.source): only one class: all \(data.rows) training labels are the same, and model '\(name)' "
                    + "needs at least two classes to learn anything")
        }
    }

    private func describe(_ kind: LabelKind) -> String {
        switch kind {
        case .binary: "binary"
        case .multiclass(let c): "\(c) classes"
        case .real: "real targets"
        }
    }
}
