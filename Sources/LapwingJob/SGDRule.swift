/// The worker's update rule: SGD with private heavy-ball or Nesterov momentum and L2 weight
/// decay added to the gradient. Its steps are in LapwingEngine (Optimizer.swift).
public struct SGDRule: Codable, Sendable, Equatable {
    public var momentum: Float
    public var nesterov: Bool
    public var weightDecay: Float

    public static let fields = ["momentum", "nesterov", "weightDecay"]

    public init(momentum: Float = 0.9, nesterov: Bool = false, weightDecay: Float = 0) {
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
    }
}
