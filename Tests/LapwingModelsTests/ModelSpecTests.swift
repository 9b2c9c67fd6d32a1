import LapwingCore
import Testing

@testable import LapwingModels

@Suite struct ModelSpecTests {
    @Test func parsesEveryModel() throws {
        #expect(try ModelSpec.parse("logistic").loss == .logistic)
        #expect(try ModelSpec.parse("svm").loss == .hinge)
        #expect(try ModelSpec.parse("leastsquares").loss == .squared)
        let mlp = try ModelSpec.parse("mlp:784-256-10")
        #expect(mlp.inputs == 784 && mlp.hidden == [256] && mlp.outputs == 10 && mlp.loss == .softmax)
        #expect(try ModelSpec.parse("mlp:784-256-10").resolve(features: 784, classes: 10) == [784, 256, 10])
        #expect(try ModelSpec.parse("mlp:64").resolve(features: 13, classes: 2) == [13, 64, 2])
        #expect(try ModelSpec.parse("softmax").resolve(features: 76045, classes: 58) == [76045, 58])
        // The ends of an mlp spec: given widths are checked, `_` comes from the data.
        #expect(try ModelSpec.parse("mlp:784-10").resolve(features: 784, classes: 10) == [784, 10])
        #expect(try ModelSpec.parse("mlp:_-32-16-_").resolve(features: 13, classes: 3) == [13, 32, 16, 3])
        #expect(try ModelSpec.parse("mlp:_-32-3").resolve(features: 13, classes: 3) == [13, 32, 3])
        #expect(try ModelSpec.parse("mlp:_-32-16-_").fixedParameterCount == nil)
    }

    @Test func parameterLayoutIsInputMajorWithBiasAfterWeights() throws {
        let m = try FeedForwardModel(spec: .parse("mlp:784-256-10"), features: 784, classes: 10)
        #expect(m.parameterCount == 784 * 256 + 256 + 256 * 10 + 10)
        #expect(m.blocks.map(\.name) == ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"])
        #expect(m.blocks[2].offset == 784 * 256 + 256 && m.blocks[2].shape == [256, 10])
    }

    @Test func initialisationIsDeterministicFromTheSeed() throws {
        let m = try FeedForwardModel(spec: .parse("mlp:20-8-3"), features: 20, classes: 3)
        var a = [Float](repeating: 0, count: m.parameterCount), b = a, c = a
        a.withUnsafeMutableBufferPointer { m.initialize($0, seed: 1) }
        b.withUnsafeMutableBufferPointer { m.initialize($0, seed: 1) }
        c.withUnsafeMutableBufferPointer { m.initialize($0, seed: 2) }
        #expect(a == b && a != c)
        for layer in m.layers {
            let bound = 1 / Float(layer.inputs).squareRoot()
            let values = a[layer.weightOffset..<(layer.biasOffset + layer.outputs)]
            #expect(values.allSatisfy { abs($0) <= bound } && values.contains { abs($0) > bound / 2 })
        }
    }

    @Test(arguments: [
        ("mlp:784-256-10", 13, 2, "its first width, 784, is the input, but the data has 13 features"),
        // Two widths are IN-OUT, never two hidden layers: 784-100-10-10 was built silently before.
        ("mlp:100-10", 784, 10, "its first width, 100, is the input, but the data has 784 features"),
        ("mlp:784-10", 784, 3, "its last width, 10, is the classes, but the data has 3 classes"),
        ("mlp:784-_-10", 784, 10, "layer 2 width '_' is not a positive integer (`_` stands only for the first or last width)"),
        ("logistic", 784, 10, "is binary but the data has 10 classes"),
        ("softmax", 10, nil, "needs class labels"),
        ("mlp:784-0-10", 784, 10, "layer 2 width '0' is not a positive integer"),
        ("perceptron", 784, 10, "unknown model"),
    ] as [(String, Int, Int?, String)])
    func refusesWhatDoesNotFit(spec: String, features: Int, classes: Int?, message: String) {
        #expect {
            _ = try FeedForwardModel(spec: ModelSpec.parse(spec), features: features, classes: classes)
        } throws: { error in
            guard let e = error as? LapwingError else { return false }
            return e.code == .invalidArgument && e.description.contains(message) && e.description.contains(spec)
        }
    }
}
