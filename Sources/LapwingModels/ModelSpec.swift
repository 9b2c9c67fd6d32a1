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
/// `mlp:784-256-10` (input, hidden..., classes) or `mlp:256-128` (hidden sizes only; input and
/// classes come from the data). Every model is a stack of fully connected layers with ReLU
/// between them; the linear models are the one-layer case.
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
        var widths: [Int] = []
        for (i, p) in parts.enumerated() {
            guard let w = Int(p), w > 0, w <= 1 << 24 else {
                throw LapwingError(
                    .invalidArgument, "model '\(text)': layer \(i + 1) width '\(p)' is not a positive integer")
            }
            widths.append(w)
        }
        switch widths.count {
        case 0:
            throw LapwingError(.invalidArgument, "model '\(text)': no layer widths after 'mlp:'")
        case 1, 2:
            // Hidden widths only; input and classes come from the data.
            return ModelSpec(name: text, loss: .softmax, inputs: nil, hidden: widths, outputs: nil)
        default:
            return ModelSpec(
                name: text, loss: .softmax, inputs: widths.first, hidden: Array(widths.dropFirst().dropLast()),
                outputs: widths.last)
        }
    }

    /// Fixes the input and output widths from the data, or says why the data does not fit.
    public func resolve(features: Int, classes: Int?) throws(LapwingError) -> [Int] {
        if let inputs, inputs != features {
            throw LapwingError(
                .invalidArgument, "model '\(name)' expects \(inputs) inputs but the data has \(features) features")
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
                    .invalidArgument, "model '\(name)' has \(declared) outputs but the data has \(classes) classes")
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
