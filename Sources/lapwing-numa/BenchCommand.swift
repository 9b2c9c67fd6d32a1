import ArgumentParser
import CLapwing
import LapwingArena
import LapwingCore
import LapwingEngine
import LapwingModels
import LapwingTopology

/// `lapwing-numa bench`: what this machine's NUMA nodes cost, measured with threads pinned to
/// CPUs and memory bound to nodes (mbind), placement checked with move_pages.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure local and remote bandwidth and latency, shared cache lines, averaging and GEMM per node.",
        discussion: """
            For every pair of nodes: read and write GB/s and the latency of a dependent load (a \
            pointer chase over a random cycle of cache lines) from a thread on the first node's CPU \
            in memory bound to the second; two threads on one cache line (atomic adds to one \
            counter, and a value passed back and forth); LAP-SGD's averaging round with one replica \
            per node beside a memcpy of the same bytes; and single-threaded GEMM with the BLAS \
            kernels Lapwing chooses, on one core of each node. The budget is split evenly over the \
            figures; allocation and page faults come on top.
            """
    )

    @Option(help: ArgumentHelp("Time for all figures together, in seconds.", valueName: "S"))
    var seconds = 12.0

    @Option(
        name: .customLong("size-mib"),
        help: ArgumentHelp("Buffer per memory node for bandwidth and latency, in MiB.", valueName: "MIB"))
    var sizeMiB = 64

    @Option(help: ArgumentHelp("Floats per replica of the larger averaging run.", valueName: "D"))
    var parameters = 4_194_304

    @OptionGroup var output: OutputOptions

    /// mlp:784-256-10: the replica size of the project's reference job.
    static let mlpParameters = 784 * 256 + 256 + 256 * 10 + 10

    func validate() throws {
        guard seconds > 0, seconds <= 3600 else { throw ValidationError("--seconds must be in (0, 3600] (got \(seconds)).") }
        guard (1...65536).contains(sizeMiB) else { throw ValidationError("--size-mib must be in 1...65536 (got \(sizeMiB)).") }
        guard (8...(1 << 28)).contains(parameters) else {
            throw ValidationError("--parameters must be in 8...\(1 << 28) (got \(parameters)).")
        }
    }

    func run() throws {
        do throws(LapwingError) {
            let report = try measure(on: try Topology.current())
            print(output.json ? try report.json() : report.text())
        } catch {
            throw fail(error)
        }
    }

    private func measure(on topology: Topology) throws(LapwingError) -> BenchReport {
        let start = monotonicSeconds()
        let numa = NUMA.isAvailable
        let cpuNodes = topology.nodesWithCPUs
        let memoryNodes = topology.nodes.filter { $0.memoryBytes > 0 && (!numa || NUMA.isUsable(node: Int32($0.osIndex))) }
        guard !cpuNodes.isEmpty, !memoryNodes.isEmpty else {
            throw LapwingError(.invalidData, "topology (\(topology.source)): no node with CPUs and memory to measure")
        }
        let bytes = sizeMiB << 20
        for node in memoryNodes where UInt64(2 * bytes) > node.memoryBytes / 2 {
            throw LapwingError(
                .invalidArgument,
                "--size-mib \(sizeMiB): two buffers would take more than half of node \(node.osIndex)'s \(formatBytes(Int(clamping: node.memoryBytes)))")
        }
        let blas = try BLAS.setUp()

        var skipped: [String] = []
        var sharingPairs: [(Topology.Node, Topology.Node)] = []
        for (i, a) in cpuNodes.enumerated() {
            for b in cpuNodes[i...] {
                if a == b, a.cpus.count < 2 {
                    skipped.append("node \(a.osIndex) with itself for a shared cache line: it has one CPU")
                } else {
                    sharingPairs.append((a, b))
                }
            }
        }
        let figures = 3 * cpuNodes.count * memoryNodes.count + 2 * sharingPairs.count + 2 + 2 * cpuNodes.count
        let perFigure = max(0.01, seconds / Double(figures))
        let distance = { (a: Topology.Node, b: Topology.Node) -> Int in
            topology.distances[topology.nodes.firstIndex(of: a)!][topology.nodes.firstIndex(of: b)!]
        }

        var memory: [BenchReport.MemoryPair] = []
        for (j, m) in memoryNodes.enumerated() {
            let stream = try touched(bytes: bytes, node: m)
            let chain = try NodeMemory(bytes: bytes, node: Int32(m.osIndex))
            MemoryProbes.linkChain(chain, seed: UInt64(j + 1))
            let share = min(try stream.shareOnNode(), try chain.shareOnNode())
            for c in cpuNodes {
                let cpu = c.cpus[0]
                let figures = try onCPUs([cpu]) { _ in
                    (
                        MemoryProbes.readGBps(stream, seconds: perFigure),
                        MemoryProbes.writeGBps(stream, seconds: perFigure),
                        MemoryProbes.chaseNanoseconds(chain, seconds: perFigure)
                    )
                }[0]
                memory.append(
                    BenchReport.MemoryPair(
                        cpuNode: c.osIndex, memoryNode: m.osIndex, cpu: cpu, local: c.osIndex == m.osIndex,
                        distance: distance(c, m), pagesOnNode: share, readGBps: figures.0, writeGBps: figures.1,
                        latencyNanoseconds: figures.2))
            }
        }

        var sharing: [BenchReport.SharingPair] = []
        for (a, b) in sharingPairs {
            let cpus = a == b ? [a.cpus[0], a.cpus[1]] : [a.cpus[0], b.cpus[0]]
            let home = memoryNodes.contains(a) ? a : memoryNodes[0]
            let line = try touched(bytes: NUMA.pageSize, node: home)
            let adds = try SharingProbes.contendedAdds(on: line, cpus: cpus, seconds: perFigure)
            let trip = try SharingProbes.pingPongNanoseconds(on: line, cpus: cpus, seconds: perFigure)
            sharing.append(
                BenchReport.SharingPair(
                    nodes: [a.osIndex, b.osIndex], cpus: cpus, memoryNode: home.osIndex, pagesOnNode: try line.shareOnNode(),
                    contendedAddsMops: adds.mops, nanosecondsPerAdd: adds.nanosecondsPerAdd, lineRoundTripNanoseconds: trip))
        }

        var averaging: [BenchReport.AveragingRun] = []
        let replicaNodes = (0..<max(2, memoryNodes.count)).map { memoryNodes[$0 % memoryNodes.count] }
        for d in [Self.mlpParameters, parameters] {
            let size = d * MemoryLayout<Float>.stride
            let replicas = try replicaNodes.map { node throws(LapwingError) in try touched(bytes: size, node: node) }
            let sources = try replicaNodes.map { node throws(LapwingError) in try touched(bytes: size, node: node) }
            let targets = try replicaNodes.map { node throws(LapwingError) in try touched(bytes: size, node: node) }
            var share = 1.0
            for buffer in replicas + sources + targets { share = min(share, try buffer.shareOnNode()) }
            let cpu = cpuNodes[0].cpus[0]
            let run = try onCPUs([cpu]) { _ in
                ComputeProbes.averaging(
                    replicas: replicas, sources: sources, targets: targets, count: d, seconds: perFigure)
            }[0]
            averaging.append(
                BenchReport.AveragingRun(
                    parameters: d, replicaNodes: replicaNodes.map(\.osIndex), cpu: cpu, pagesOnNodes: share,
                    rounds: run.rounds, averagingGBps: run.averagingGBps, memcpyGBps: run.memcpyGBps,
                    ratioToMemcpy: run.averagingGBps / run.memcpyGBps))
        }

        var gemm: [BenchReport.Gemm] = []
        for c in cpuNodes {
            let home = memoryNodes.contains(c) ? c : memoryNodes[0]
            for (m, k, n) in [(64, 784, 256), (512, 512, 512)] {
                let matrices = try touched(bytes: (m * k + k * n + m * n) * MemoryLayout<Float>.stride, node: home)
                let share = try matrices.shareOnNode()
                let gflops = try onCPUs([c.cpus[0]]) { _ in
                    ComputeProbes.gemmGFLOPs(m: m, n: n, k: k, memory: matrices, seconds: perFigure)
                }[0]
                gemm.append(
                    BenchReport.Gemm(node: c.osIndex, cpu: c.cpus[0], shape: "\(m)x\(k)x\(n)", pagesOnNode: share, gflops: gflops))
            }
        }

        return BenchReport(
            source: topology.source, numaAvailable: numa,
            nodes: topology.nodes.map { BenchReport.Node(node: $0.osIndex, cpus: $0.cpus, memoryBytes: $0.memoryBytes) },
            distances: topology.distances, budgetSeconds: seconds, secondsPerFigure: perFigure, bufferBytes: bytes,
            blas: blas, memory: memory, sharing: sharing, averaging: averaging, gemm: gemm,
            remoteOverLocal: BenchReport.remoteOverLocal(memory), skipped: skipped,
            wallSeconds: monotonicSeconds() - start)
    }

    /// Memory bound to `node` with every page faulted in.
    private func touched(bytes: Int, node: Topology.Node) throws(LapwingError) -> NodeMemory {
        let memory = try NodeMemory(bytes: bytes, node: Int32(node.osIndex))
        memory.touch()
        return memory
    }
}
