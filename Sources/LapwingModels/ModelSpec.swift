import Foundation
import LapwingCore

/// What a model computes at its output, and the loss it is trained on.
public enum OutputLoss: String, Codable, Sendable {
    /// Binary logistic regression: labels ±1, loss log(1 + exp(-y z)).
    case logistic
    /// Linear SVM: labels ±1, hinge loss max(0, 1 - y z).
    case hinge
    /// Least squares: real targets, loss (z - y)^2 / 2.
    case squared
    /// Softmax cross-entropy over `classes` outputs: labels are class indices.
    case softmax
}

/// A model spec string, resolved against the data: `logistic`, `svm`, `leastsquares`, `softmax`,
/// or an MLP. An MLP spec of two or more widths is always IN-HIDDEN...-OUT: the first width is
/// the input (checked against the data's features), the last the classes (checked against the
/// data's classes): `mlp:784-256-10`, and `mlp:100-10` is softmax regression on 100 features,
/// never 100 hidden units. `_` in the first or last place leaves that width to the data
/// (`mlp:_-256-128-_`), and a single width is one hidden layer (`mlp:256` = `mlp:_-256-_`).
/// Every model is a stack of fully connected layers with ReLU between them; the linear models
/// are the one-layer case.
public struct ModelSpec: Codable, Sendable, Equatable, CustomStringConvertible {
    public var name: String
    public var loss: OutputLoss
    /// Layer widths from input to output, when given in full; nil entries come from the data.
    public var inputs: Int?
    public var hidden: [Int]
    public var outputs: Int?

    public var description: String { name }

    public static func parse(_ text: String) throws(LapwingError) -> ModelSpec {
        let s = text.trimmingCharacters(in: .whitespaces).lowercased()
        switch s {
        case "logistic", "logreg", "logistic-regression":
            return ModelSpec(name: text, loss: .logistic, inputs: nil, hidden: [], outputs: 1)
        case "svm", "linear-svm", "hinge":
            return ModelSpec(name: text, loss: .hinge, inputs: nil, hidden: [], outputs: 1)
        case "leastsquares", "least-squares", "linear":
            return ModelSpec(name: text, loss: .squared, inputs: nil, hidden: [], outputs: 1)
        case "softmax", "softmax-regression":
            return ModelSpec(name: text, loss: .softmax, inputs: nil, hidden: [], outputs: nil)
        default:
            break
        }
        guard s.hasPrefix("mlp:") else {
            throw LapwingError(
                .invalidArgument, "model '\(text)': unknown model",
                detail: "expected logistic, svm, leastsquares, softmax or mlp:IN-HIDDEN...-OUT (e.g. mlp:784-256-10)")
        }
        let parts = s.dropFirst(4).split(separator: "-", omittingEmptySubsequences: false)
        if parts.count == 1 && parts[0].isEmpty {
            throw LapwingError(.invalidArgument, "model '\(text)': no layer widths after 'mlp:'")
        }
        // nil: `_`, the width the data decide (only first or last).
        var widths: [Int?] = []
        for (i, p) in parts.enumerated() {
            if p == "_" && parts.count >= 2 && (i == 0 || i == parts.count - 1) {
                widths.append(nil)
                continue
            }
            guard let w = Int(p), w > 0, w <= 1 << 24 else {
                throw LapwingError(
                    .invalidArgument,
                    "model '\(text)': layer \(i + 1) width '\(p)' is not a positive integer"
                        + (p == "_" ? " (`_` stands only for the first or last width)" : ""))
            }
            widths.append(w)
        }
        if widths.count == 1 {
            // One hidden layer; input and classes come from the data.
            return ModelSpec(name: text, loss: .softmax, inputs: nil, hidden: [widths[0]!], outputs: nil)
        }
        return ModelSpec(
            name: text, loss: .softmax, inputs: widths.first!, hidden: widths.dropFirst().dropLast().map { $0! },
            outputs: widths.last!)
    }

    /// Fixes the input and output widths from the data, or says why the data does not fit.
    public func resolve(features: Int, classes: Int?) throws(LapwingError) -> [Int] {
        if let inputs, inputs != features {
            throw LapwingError(
                .invalidArgument,
                "model '\(name)': its first width, \(inputs), is the input, but the data has \(features) features",
                detail: "an mlp spec of two or more widths is IN-HIDDEN...-OUT: write mlp:\(features)-...; "
                    + "mlp:H is one hidden layer and mlp:_-H1-H2-_ several, with both ends from the data")
        }
        let outputs: Int
        switch loss {
        case .softmax:
            guard let classes, classes >= 2 else {
                throw LapwingError(
                    .invalidArgument, "model '\(name)' needs class labels, but the data's labels are not classes")
            }
            if let declared = self.outputs, declared != classes {
                throw LapwingError(
                    .invalidArgument,
                    "model '\(name)': its last width, \(declared), is the classes, but the data has \(classes) classes")
            }
            outputs = classes
        case .logistic, .hinge:
            if let classes, classes != 2 {
                throw LapwingError(
                    .invalidArgument, "model '\(name)' is binary but the data has \(classes) classes",
                    detail: "use softmax or an mlp for multi-class data")
            }
            outputs = 1
        case .squared:
            outputs = 1
        }
        return [features] + hidden + [outputs]
    }
}

extension ModelSpec {
    /// The number of parameters when the spec fixes every width (`mlp:784-256-10`); nil when the
    /// data decide them (`softmax`, `mlp:256`).
    public var fixedParameterCount: Int? {
        guard let inputs, let outputs else { return nil }
        return try? FeedForwardModel(spec: self, features: inputs, classes: loss == .softmax ? outputs : nil).parameterCount
    }
}
