// swift-tools-version:6.1
import PackageDescription

// Lapwing: asynchronous and local SGD on one multicore Linux box.
// Logic lives in library targets that the tests import; executables are thin.
let strict: [SwiftSetting] = [.unsafeFlags(["-warnings-as-errors"])]

let package = Package(
    name: "Lapwing",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "lapwing", targets: ["lapwing"]),
        .executable(name: "lapwingd", targets: ["lapwingd"]),
        .executable(name: "lapwing-numa", targets: ["lapwing-numa"]),
        .executable(name: "lapwing-bench", targets: ["lapwing-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // The one C target: thin headers per subsystem (shm, numa, proc, blas) and the arena layout.
        .target(
            name: "CLapwing",
            path: "CShims",
            cSettings: [.unsafeFlags(["-O2", "-Wall", "-Werror"])],
            linkerSettings: [.linkedLibrary("numa"), .linkedLibrary("hwloc"), .linkedLibrary("dl"), .linkedLibrary("z")]
        ),
        .target(name: "LapwingCore", dependencies: ["CLapwing"], swiftSettings: strict),
        .target(name: "LapwingData", dependencies: ["LapwingCore", "CLapwing"], swiftSettings: strict),
        .target(
            name: "LapwingModels",
            dependencies: ["LapwingCore", "LapwingData", "CLapwing"],
            swiftSettings: strict + [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
        ),
        .target(name: "LapwingTopology", dependencies: ["LapwingCore", "CLapwing"], swiftSettings: strict),
        // What travels between the CLI, the daemon and the job host: the job spec, the host's
        // events and summary, the daemon's job record. Both sides link it; neither links the other.
        .target(name: "LapwingJob", dependencies: ["LapwingCore"], swiftSettings: strict),
        // The control-plane protocol (framed JSON over a Unix socket), shared by lapwingd and the CLI.
        .target(name: "LapwingProtocol", dependencies: ["LapwingCore", "CLapwing"], swiftSettings: strict),
        .target(
            name: "LapwingArena",
            dependencies: ["LapwingCore", "LapwingTopology", "CLapwing", .product(name: "Atomics", package: "swift-atomics")],
            swiftSettings: strict
        ),
        .target(
            name: "LapwingEngine",
            dependencies: [
                "LapwingCore", "LapwingJob", "LapwingData", "LapwingModels", "LapwingTopology", "LapwingArena", "CLapwing",
            ],
            swiftSettings: strict + [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))]
        ),
        .target(
            name: "LapwingDaemon",
            dependencies: [
                "LapwingCore", "LapwingJob", "LapwingEngine", "LapwingArena", "LapwingTopology", "LapwingProtocol", "CLapwing",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "lapwingd",
            dependencies: [
                "LapwingCore", "LapwingJob", "LapwingDaemon", "LapwingEngine", "LapwingTopology", "LapwingProtocol",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // Studies: several jobs' tables and SVG plots from their summaries and metrics.
        .target(name: "LapwingStudy", dependencies: ["LapwingCore", "LapwingJob"], swiftSettings: strict),
        // The options of a training job, shared by lapwing (run, submit, study) and lapwing-numa (tune).
        .target(
            name: "LapwingOptions",
            dependencies: [
                "LapwingCore", "LapwingJob", "LapwingEngine", .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "lapwing",
            dependencies: [
                "LapwingCore", "LapwingJob", "LapwingEngine", "LapwingProtocol", "LapwingData", "LapwingTopology", "LapwingStudy",
                "LapwingOptions",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "lapwing-numa",
            dependencies: [
                "CLapwing", "LapwingCore", "LapwingTopology", "LapwingArena", "LapwingModels", "LapwingEngine", "LapwingOptions",
                "LapwingJob", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Atomics", package: "swift-atomics"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "lapwing-bench",
            dependencies: ["CLapwing", "LapwingCore", "LapwingJob", "LapwingData", "LapwingModels", "LapwingEngine", "LapwingProtocol"],
            swiftSettings: strict + [.unsafeFlags(["-Ounchecked"])]
        ),
        // Shared by the test targets: built binaries, spawning in a process group, scratch dirs.
        .target(name: "LapwingTestSupport", path: "Tests/LapwingTestSupport"),
        .testTarget(name: "LapwingCoreTests", dependencies: ["LapwingCore", "CLapwing"]),
        .testTarget(name: "LapwingDataTests", dependencies: ["LapwingData"]),
        .testTarget(name: "LapwingModelsTests", dependencies: ["LapwingModels", "LapwingData"]),
        .testTarget(name: "LapwingTopologyTests", dependencies: ["LapwingTopology", "lapwing-numa"]),
        .testTarget(
            name: "LapwingEngineTests",
            dependencies: [
                "LapwingEngine", "LapwingJob", "LapwingModels", "LapwingData", "LapwingCore", "LapwingTestSupport", "lapwing",
                "LapwingStudy",
            ]),
        .testTarget(
            name: "LapwingDaemonTests",
            dependencies: [
                "LapwingDaemon", "LapwingJob", "LapwingEngine", "LapwingProtocol", "LapwingTestSupport", "lapwing", "lapwingd",
                "lapwing-bench",
            ]),
        .testTarget(name: "LapwingJobTests", dependencies: ["LapwingJob"], exclude: ["Fixtures"]),
        .testTarget(name: "LapwingProtocolTests", dependencies: ["LapwingProtocol", "LapwingCore"]),
        .testTarget(
            name: "LapwingOptionsTests",
            dependencies: ["LapwingOptions", "LapwingCore", "LapwingTestSupport", "lapwing", "lapwing-numa"]),
        .testTarget(name: "LapwingArenaTests", dependencies: ["LapwingArena", "LapwingTopology", "lapwing-numa"]),
    ],
    swiftLanguageModes: [.v6]
)
