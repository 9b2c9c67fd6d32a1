import Foundation
import LapwingJob
import Testing

/// The job spec's JSON: versioned, strict, and the records of Lapwing 0.1 still load.
@Suite struct JobSpecTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    func decode(_ json: String) throws -> JobSpec { try JSONDecoder().decode(JobSpec.self, from: Data(json.utf8)) }

    func refusal(_ json: String) -> String {
        do {
            _ = try decode(json)
            return "accepted"
        } catch {
            return "\(error)"
        }
    }

    static let v2 = """
        {"version":2,"data":"idx:/d","model":"softmax","algorithm":{"name":"lap-sgd","period":8},"workers":2,
         "epochs":1,"batch":16,"schedule":{"kind":"cosine","base":0.02,"warmup":0,"stepAt":[0.5],"stepFactor":0.1,"minimum":0},
         "sgd":{"momentum":0.9,"nesterov":false,"weightDecay":0},"evalEvery":1,"holdout":0.2,"seed":1,"id":"a"}
        """

    @Test func aRecordWrittenByLapwing01StillLoads() throws {
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("job-0.1.json"))
        let record = try JSONDecoder().decode(JobRecord.self, from: data)
        #expect(record.id == "j3-5f2a" && record.state == .succeeded)
        #expect(record.spec.algorithm == AlgorithmConfig(name: "lap-sgd", knobs: ["period": 16, "averaging-warmup": 0.5]))
        #expect(record.spec.replicas == 2 && record.spec.sgd.nesterov && record.spec.workers == 2)
        #expect(record.summary?.testAccuracy == 0.8885 && record.summary?.bytesExchanged == nil)
        // Written again, it is version 2 and reads back the same.
        let again = try JSONEncoder().encode(record)
        #expect(String(decoding: again, as: UTF8.self).contains("\"version\":2"))
        #expect(try JSONDecoder().decode(JobRecord.self, from: again) == record)
    }

    @Test func version2RoundTripsWithTheAlgorithmsKnobs() throws {
        let spec = try decode(Self.v2)
        #expect(spec.algorithm.name == "lap-sgd" && spec.algorithm.knobs == ["period": 8])
        #expect(try JSONDecoder().decode(JobSpec.self, from: JSONEncoder().encode(spec)) == spec)
    }

    /// `--data-split` travels as "dataSplit": absent means iid (and iid is not written), a bad
    /// ALPHA is refused naming the option.
    @Test func theDataSplitTravelsAndIsChecked() throws {
        #expect(try decode(Self.v2).dataSplit == .iid)
        #expect(!String(decoding: try JSONEncoder().encode(decode(Self.v2)), as: UTF8.self).contains("dataSplit"))
        let skewed = try decode(Self.v2.replacingOccurrences(of: "\"seed\":1", with: "\"seed\":1,\"dataSplit\":\"label-skew:0.1\""))
        #expect(skewed.dataSplit == .labelSkew(alpha: 0.1))
        #expect(try JSONDecoder().decode(JobSpec.self, from: JSONEncoder().encode(skewed)) == skewed)
        #expect(refusal(Self.v2.replacingOccurrences(of: "\"seed\":1", with: "\"seed\":1,\"dataSplit\":\"label-skew:-2\""))
            .contains("--data-split label-skew:-2: ALPHA must be above 0"))
        #expect(refusal(Self.v2.replacingOccurrences(of: "\"seed\":1", with: "\"seed\":1,\"dataSplit\":\"sorted\""))
            .contains("--data-split sorted: expected iid or label-skew:ALPHA"))
    }

    /// `--node-data` travels as "nodeData": absent means auto (and auto is not written); a bad
    /// mode is refused naming the option.
    @Test func theNodeDataModeTravelsAndIsChecked() throws {
        #expect(try decode(Self.v2).nodeData == .auto)
        #expect(!String(decoding: try JSONEncoder().encode(decode(Self.v2)), as: UTF8.self).contains("nodeData"))
        let on = try decode(Self.v2.replacingOccurrences(of: "\"seed\":1", with: "\"seed\":1,\"nodeData\":\"on\""))
        #expect(on.nodeData == .on)
        #expect(try JSONDecoder().decode(JobSpec.self, from: JSONEncoder().encode(on)) == on)
        #expect(refusal(Self.v2.replacingOccurrences(of: "\"seed\":1", with: "\"seed\":1,\"nodeData\":\"always\""))
            .contains("--node-data always: choose auto, on or off"))
        #expect(NodeData.auto.copies(workerNodes: 2) && !NodeData.auto.copies(workerNodes: 1))
        #expect(NodeData.on.copies(workerNodes: 1) && !NodeData.off.copies(workerNodes: 4))
    }

    @Test func unknownFieldsAreRefusedByName() {
        #expect(refusal(Self.v2.replacingOccurrences(of: "\"seed\":1", with: "\"seed\":1,\"sead\":2"))
            .contains("unknown field \"sead\" in the job spec"))
        #expect(refusal(Self.v2.replacingOccurrences(of: "\"nesterov\":false", with: "\"nesterov\":false,\"nest\":1"))
            .contains("unknown field \"nest\" in sgd"))
        #expect(refusal(Self.v2.replacingOccurrences(of: "\"version\":2", with: "\"version\":3"))
            .contains("job spec version 3 is not one this build reads"))
        // Version 2 has no "averaging": the algorithm's object holds its knobs.
        #expect(refusal(Self.v2.replacingOccurrences(of: "\"seed\":1", with: "\"seed\":1,\"averaging\":{}"))
            .contains("unknown field \"averaging\""))
        #expect(refusal(Self.v2.replacingOccurrences(of: "{\"name\":\"lap-sgd\",\"period\":8}", with: "{\"period\":8}"))
            .contains("no name given"))
    }

    @Test func validationNamesTheOption() {
        var spec = JobSpec(data: "idx:/d", model: "softmax", algorithm: AlgorithmConfig(name: "hogwild"), workers: 2, id: "a")
        spec.straggler = Straggler(worker: 5, milliseconds: 10)
        #expect(throws: (any Error).self) { try spec.validate() }
        #expect((try? Straggler.parse("1:50")) == Straggler(worker: 1, milliseconds: 50))
        #expect(throws: (any Error).self) { try Straggler.parse("1-50") }
    }
}
