import ArgumentParser
import LapwingCore
import LapwingTopology

/// `lapwing-numa topology`: the machine's (or a synthetic or XML) NUMA topology and the placement
/// Lapwing would choose on it.
struct TopologyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology",
        abstract: "Show NUMA nodes, cores, hyper-thread siblings, memory, distances and the placement of W workers."
    )

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Use an hwloc synthetic topology instead of this machine, e.g. \"pack:2 numa:2 core:8 pu:2\".",
            valueName: "STR"))
    var synthetic: String?

    @Option(
        name: .long, help: ArgumentHelp("Use a topology saved as hwloc XML (lstopo FILE.xml).", valueName: "FILE"))
    var xml: String?

    @Option(name: .long, help: ArgumentHelp("Workers to place (default: one per physical core).", valueName: "W"))
    var workers: Int?

    @Option(
        name: .long,
        help: ArgumentHelp("Model replicas (default: one per NUMA node with workers; at most W).", valueName: "R"))
    var replicas: Int?

    @OptionGroup var output: OutputOptions

    func validate() throws {
        if synthetic != nil, xml != nil {
            throw ValidationError("--synthetic and --xml are exclusive: give one topology source.")
        }
        if let w = workers, w < 1 {
            throw ValidationError("--workers must be at least 1 (got \(w)).")
        }
        if let r = replicas, r < 1 {
            throw ValidationError("--replicas must be at least 1 (got \(r)).")
        }
        if let r = replicas, let w = workers, r > w {
            throw ValidationError(
                "--replicas (\(r)) must not exceed --workers (\(w)): a replica with no worker is never trained.")
        }
    }

    func run() throws {
        do throws(LapwingError) {
            let topology: Topology
            if let synthetic {
                topology = try Topology.synthetic(synthetic)
            } else if let xml {
                topology = try Topology.xml(path: xml)
            } else {
                topology = try Topology.current()
            }
            let w = workers ?? max(1, topology.cores.count)
            let placement = try topology.place(workers: w, replicas: replicas)
            let report = TopologyReport(topology: topology, placement: placement)
            print(output.json ? report.json() : report.text())
        } catch {
            throw fail(error)
        }
    }
}
