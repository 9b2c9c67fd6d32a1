import Foundation
import LapwingCore
import LapwingOptions
import LapwingTestSupport
import Testing

/// Job files (`--config FILE`): what they expand to, what wins, and how a bad line is named.
@Suite struct JobConfigFileTests {
    let dir: String
    init() throws { dir = try TestSupport.temporaryDirectory("jobconf") }

    func file(_ name: String, _ text: String) throws -> String {
        let path = dir + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func parsed(_ arguments: [String]) throws -> TrainingOptions {
        let expanded = try JobConfigFile.expand(arguments)
        return try TrainingOptions.parse(Array(expanded.dropFirst()))
    }

    @Test func theFileGivesTheJobAndTheCommandLineWins() throws {
        let f = try file(
            "job.conf",
            """
            # a job
            [Job]
            data = idx:/somewhere
            model = mlp:784-256-10   # a comment after a value
            algorithm = lap-sgd
            replicas = 2
            period = 8
            nesterov = yes
            epochs = 3
            name = two words
            """)
        let o = try parsed(["run", "--config", f, "--epochs", "0.5", "--no-nesterov"])
        #expect(o.data == "idx:/somewhere" && o.model == "mlp:784-256-10" && o.algorithm == "lap-sgd")
        #expect(o.replicas == 2 && o.algorithmOptions == ["--period", "8"] && o.name == "two words")
        #expect(o.epochs == 0.5, "the command line's --epochs wins")
        #expect(o.nesterov == false, "--no-nesterov on the command line wins over nesterov = yes")
        // The command line's --period replaces the file's (an algorithm option given twice is refused).
        #expect(try parsed(["run", "--config=\(f)", "--period", "32"]).algorithmOptions == ["--period", "32"])
        // Another algorithm on the command line leaves the file's algorithm options out.
        let h = try parsed(["run", "--config", f, "--algorithm", "hogwild", "--replicas", "1"])
        #expect(h.algorithm == "hogwild" && h.algorithmOptions.isEmpty)
        // Without --config nothing changes.
        #expect(try JobConfigFile.expand(["run", "--epochs", "2"]) == ["run", "--epochs", "2"])
    }

    @Test(arguments: [
        ("[Job]\nwrokers = 2\n", ":2: unknown key wrokers"),
        ("[Job]\nworkers = two\n", ":2: workers = two:"),
        ("[Jobs]\nworkers = 2\n", ":1: unknown section [Jobs]"),
        ("workers = 2\n", ":1: workers is outside the [Job] section"),
        ("[Job]\nworkers = 2\n\nworkers = 3\n", ":4: workers is given twice (first on line 2)"),
        ("[Job]\n--workers = 2\n", ":2: '--workers': a key is an option's name without its dashes"),
        ("[Job]\nnesterov = maybe\n", ":2: nesterov = maybe: needs yes or no"),
        ("[Job]\nperiod = often\n", ":2: period = often: not an option of lapwing run"),
        ("[Job]\nworkers 2\n", ":2: expected Key = value"),
        ("[Job]\nconfig = other.conf\n", ":2: config: a job file cannot name another"),
    ])
    func aBadLineIsNamedWithItsFileAndLine(text: String, message: String) throws {
        let f = try file("bad.conf", text)
        #expect {
            try JobConfigFile.expand(["run", "--config", f])
        } throws: { error in
            "\(error)".contains(f + message)
        }
    }

    @Test func aMissingFileIsNamed() throws {
        #expect {
            try JobConfigFile.expand(["run", "--config", dir + "/none.conf"])
        } throws: { error in
            "\(error)".contains(dir + "/none.conf")
        }
    }

    @Test func whatIsWrittenReadsBackAsTheSameJob() throws {
        var o = try TrainingOptions.parse([
            "--data", "idx:/x", "--model", "softmax", "--algorithm", "lpp-sgd", "--workers", "2", "--replicas", "2",
            "--no-nesterov", "--lr", "0.5", "--period", "4", "--name", "a job", "--compress", "qsgd:4",
        ])
        o.config = nil
        let path = dir + "/written.conf"
        try JobConfigFile.write(o, comments: ["a test"], to: path)
        let back = try parsed(["run", "--config", path])
        #expect(try back.fileEntries().map { "\($0.0)=\($0.1)" } == o.fileEntries().map { "\($0.0)=\($0.1)" })
        #expect(back.nesterov == false && back.lr == 0.5 && back.compress == "qsgd:4")
        #expect(try String(contentsOfFile: path, encoding: .utf8).hasPrefix("# a test\n[Job]\n"))
    }
}
