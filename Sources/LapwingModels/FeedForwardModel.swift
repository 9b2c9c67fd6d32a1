import LapwingCore
import LapwingData

/// One fully connected layer's place in the flat parameter vector. Weights are input-major,
/// `weights[i * outputs + o]`, so that y = x W + b and a sparse input row touches one
/// contiguous block of `outputs` floats per non-zero feature.
public struct LayerLayout: Codable, Sendable, Equatable {
    public var inputs: Int
    public var outputs: Int
    public var weightOffset: Int
    public var biasOffset: Int
}

/// A named tensor inside the flat parameter vector (for export and inspection).
public struct ParameterBlock: Codable, Sendable, Equatable {
    public var name: String
    public var offset: Int
    public var shape: [Int]
    public var count: Int { shape.reduce(1, *) }
}

/// Loss and accuracy over some rows.
public struct Evaluation: Sendable, Equatable {
    public var lossSum: Double = 0
    public var correct: Int = 0
    public var count: Int = 0
    public init() {}
    public var meanLoss: Double { count == 0 ? 0 : lossSum / Double(count) }
    public var accuracy: Double { count == 0 ? 0 : Double(correct) / Double(count) }
    public static func += (a: inout Evaluation, b: Evaluation) {
        a.lossSum += b.lossSum
        a.correct += b.correct
        a.count += b.count
    }
}

/// Every Lapwing model: fully connected layers with ReLU between them and an output loss.
/// Logistic regression, linear SVM and least squares are one layer with one output; softmax
/// regression is one layer with one output per class; `mlp:784-256-10` is two layers.
/// Parameters are one flat Float32 vector; the model holds no state of its own, so one value
/// serves every worker, each with its own `ModelWorkspace` and `GradientBuffer`.
public struct FeedForwardModel: Sendable {
    public let spec: ModelSpec
    public let loss: OutputLoss
    public let layers: [LayerLayout]
    public let parameterCount: Int

    public init(spec: ModelSpec, features: Int, classes: Int?) throws(LapwingError) {
        let widths = try spec.resolve(features: features, classes: classes)
        var layers: [LayerLayout] = []
        var offset = 0
        for l in 0..<(widths.count - 1) {
            let (i, o) = (widths[l], widths[l + 1])
            layers.append(LayerLayout(inputs: i, outputs: o, weightOffset: offset, biasOffset: offset + i * o))
            offset += i * o + o
        }
        guard offset <= Int(Int32.max) else {
            throw LapwingError(
                .invalidArgument, "model '\(spec.name)' has \(offset) parameters",
                detail: "at most \(Int32.max) are supported")
        }
        self.spec = spec
        self.loss = spec.loss
        self.layers = layers
        self.parameterCount = offset
    }

    public var inputs: Int { layers[0].inputs }
    public var outputs: Int { layers[layers.count - 1].outputs }
    public var isClassifier: Bool { loss != .squared }

    /// The tensors, named as in the exported safetensors file: `layers.N.weight` [in, out]
    /// and `layers.N.bias` [out].
    public var blocks: [ParameterBlock] {
        layers.enumerated().flatMap { l, layer in
            [
                ParameterBlock(name: "layers.\(l).weight", offset: layer.weightOffset, shape: [layer.inputs, layer.outputs]),
                ParameterBlock(name: "layers.\(l).bias", offset: layer.biasOffset, shape: [layer.outputs]),
            ]
        }
    }

    /// Deterministic initialisation from `seed`: weights and biases uniform in ±1/sqrt(fan-in)
    /// (PyTorch's default for a linear layer), each layer from its own random stream.
    public func initialize(_ params: UnsafeMutableBufferPointer<Float>, seed: UInt64) {
        precondition(params.count == parameterCount)
        for (l, layer) in layers.enumerated() {
            var rng = SeededGenerator(seed: seed, stream: UInt64(l))
            let bound = 1 / Float(layer.inputs).squareRoot()
            for k in layer.weightOffset..<(layer.biasOffset + layer.outputs) {
                params[k] = (2 * rng.nextUnitFloat() - 1) * bound
            }
        }
    }

    public func makeWorkspace(batchCapacity: Int) -> ModelWorkspace {
        ModelWorkspace(widths: layers.map(\.outputs), capacity: batchCapacity)
    }

    public func makeGradientBuffer() -> GradientBuffer {
        GradientBuffer(count: parameterCount, sparseEnd: layers[0].biasOffset, blockSize: layers[0].outputs)
    }
}

/// A worker's scratch space for one model: the activations of each layer and two delta
/// buffers, sized for `capacity` rows. Not shared between workers.
public final class ModelWorkspace {
    public let capacity: Int
    let widths: [Int]
    let activations: [UnsafeMutablePointer<Float>]
    let deltaA: UnsafeMutablePointer<Float>
    let deltaB: UnsafeMutablePointer<Float>

    init(widths: [Int], capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        self.widths = widths
        activations = widths.map { w in
            let p = UnsafeMutablePointer<Float>.allocate(capacity: w * capacity)
            p.initialize(repeating: 0, count: w * capacity)
            return p
        }
        let widest = widths.max()! * capacity
        deltaA = .allocate(capacity: widest)
        deltaB = .allocate(capacity: widest)
        deltaA.initialize(repeating: 0, count: widest)
        deltaB.initialize(repeating: 0, count: widest)
    }

    deinit {
        for p in activations { p.deallocate() }
        deltaA.deallocate()
        deltaB.deallocate()
    }
}
