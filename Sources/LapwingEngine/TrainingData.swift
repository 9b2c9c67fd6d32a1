import LapwingCore
import LapwingJob
import LapwingData

/// The rows a job trains and evaluates on: the data set's own test set, or a seeded holdout
/// of the training rows when it has none (rows are indices, nothing is copied).
struct TrainingData {
    let train: Dataset
    /// This machine's share of them in a job across machines (`MachineShards`).
    var trainRows: [Int]
    /// Rows that make an epoch: in a job across machines the mean share (every row of the file
    /// over the machines, the same on every rank, so every rank trains the same samples and the
    /// lockstep algorithms take the same steps however the split dealt the rows); else nil.
    var machineEpochRows: Int? = nil
    let test: Dataset
    let testRows: [Int]
    /// Classes the model must predict (nil for regression).
    let classes: Int?

    static func load(_ spec: JobSpec) throws(LapwingError) -> TrainingData {
        var data = try loadRows(spec)
        if let machine = spec.machine {
            data.machineEpochRows = max(1, data.trainRows.count / machine.size)
            data.trainRows = MachineShards.rows(of: data.trainRows, machine: machine, split: spec.dataSplit, seed: spec.seed) {
                data.train.label($0)
            }
            guard data.trainRows.count >= spec.workers else {
                throw LapwingError(
                    .invalidArgument,
                    "--mpi: rank \(machine.rank) of \(machine.size) has \(data.trainRows.count) training rows, fewer than its \(spec.workers) workers")
            }
        }
        if case .labelSkew = spec.dataSplit {
            guard data.classes != nil else {
                throw LapwingError(
                    .invalidArgument, "--data-split \(spec.dataSplit): \(spec.data) has real-valued labels; a label skew needs classes")
            }
            guard data.trainRows.count >= spec.workers else {
                throw LapwingError(
                    .invalidArgument,
                    "--data-split \(spec.dataSplit): \(data.trainRows.count) training rows cannot give each of \(spec.workers) workers one")
            }
        }
        return data
    }

    private static func loadRows(_ spec: JobSpec) throws(LapwingError) -> TrainingData {
        let (train, maybeTest): (Dataset, Dataset?)
        if let fds = spec.dataDescriptors {
            (train, maybeTest) = try DataSpec.parse(spec.data).load(descriptors: fds, names: spec.dataNames ?? [:])
        } else {
            (train, maybeTest) = try DataSpec.parse(spec.data).load()
        }
        guard train.rows > 0 else { throw LapwingError(.invalidData, "\(spec.data): the training set has no rows") }
        let classes = Self.classes(train.labelKind, maybeTest?.labelKind)
        if let test = maybeTest {
            guard test.cols == train.cols else {
                throw LapwingError(
                    .invalidData, "\(spec.data): the test set has \(test.cols) features, the training set \(train.cols)")
            }
            return TrainingData(
                train: train, trainRows: Array(0..<train.rows), test: test, testRows: Array(0..<test.rows),
                classes: classes)
        }
        var rows = Array(0..<train.rows)
        guard spec.holdout > 0 else {
            return TrainingData(train: train, trainRows: rows, test: train, testRows: rows, classes: classes)
        }
        var rng = SeededGenerator(seed: spec.seed, stream: 77)
        rows.shuffle(using: &rng)
        let held = max(1, Int((Double(rows.count) * spec.holdout).rounded()))
        guard held < rows.count else {
            throw LapwingError(.invalidArgument, "--holdout \(spec.holdout) leaves no training rows of \(rows.count)")
        }
        return TrainingData(
            train: train, trainRows: Array(rows[held...]).sorted(), test: train, testRows: Array(rows[..<held]).sorted(),
            classes: classes)
    }

    /// Rows that make an epoch of this job (`machineEpochRows`, else every training row).
    var epochRows: Int { machineEpochRows ?? trainRows.count }

    static func classes(_ a: LabelKind, _ b: LabelKind?) -> Int? { TrainingDataClasses.of(a, b) }
}

/// The number of classes a model must predict for data with these label kinds (nil: regression).
public enum TrainingDataClasses {
    public static func of(_ a: LabelKind, _ b: LabelKind? = nil) -> Int? {
        func k(_ kind: LabelKind) -> Int? {
            switch kind {
            case .binary: return 2
            case .multiclass(let c): return c
            case .real: return nil
            }
        }
        guard let ka = k(a) else { return nil }
        guard let b else { return ka }
        guard let kb = k(b) else { return nil }
        return a == .binary && b == .binary ? 2 : max(ka, kb)
    }
}
