import LapwingCore
import Testing

@testable import LapwingData

@Suite struct DataSpecTests {
    @Test func parsesForms() throws {
        let a = try DataSpec.parse("idx:/data/mnist")
        #expect(a.format == .idx && a.train == "/data/mnist" && a.test == nil)
        let b = try DataSpec.parse("libsvm:tr.svm,te.svm;features=100")
        #expect(b.format == .libsvm && b.train == "tr.svm" && b.test == "te.svm" && b.libsvm.featureCount == 100)
        let c = try DataSpec.parse("csv:tr.csv;label=3;header")
        #expect(c.csv.labelColumn == .index(3) && c.csv.hasHeader == true && c.test == nil)
        let d = try DataSpec.parse("csv:a.csv,b.csv;label=y;delim=tab;labels=real")
        #expect(d.csv.labelColumn == .name("y") && d.csv.delimiter == 9 && d.labels.kind == .real)
    }

    @Test func errorsNameSpecAndField() {
        let cases: [(String, String)] = [
            ("mnist", "data spec 'mnist': format:"),
            ("parquet:x", "data spec 'parquet:x': format: unknown format 'parquet'"),
            ("csv:", "data spec 'csv:': train: empty path"),
            ("csv:a,b,c", "paths: expected TRAIN or TRAIN,TEST"),
            ("csv:a;label=", "data spec 'csv:a;label=': label: needs a value"),
            ("libsvm:a;features=-3", "features: '-3' is not a positive integer"),
            ("libsvm:a;header", "header: unknown option for libsvm"),
            ("idx:a,b", "paths: idx takes one directory"),
            ("csv:a;labels=weird", "labels: 'weird' is not auto"),
        ]
        for (spec, want) in cases {
            let e = thrownError { () throws(LapwingError) in try DataSpec.parse(spec) }
            #expect(e?.code == .invalidArgument, "\(spec)")
            #expect(e?.message.contains(want) == true, "\(spec): \(String(describing: e))")
        }
    }

    @Test func testSetAgreesWithTrainSet() throws {
        let dir = TempDir()
        defer { dir.remove() }
        let tr = dir.write("tr.svm", "0 1:1\n3 2:1\n1 3:1\n")
        let te = dir.write("te.svm", "1 5:1\n0 1:1\n")
        let (train, test) = try DataSpec.parse("libsvm:\(tr),\(te)").load()
        #expect(train.cols == 5 && test?.cols == 5)
        #expect(train.labelKind == .multiclass(classes: 4))
        #expect(test?.labelKind == .multiclass(classes: 4))

        let ctr = dir.write("tr.csv", "1,2\n0,3\n")
        let cte = dir.write("te.csv", "1,2,3\n")
        let e = thrownError { () throws(LapwingError) in try DataSpec.parse("csv:\(ctr),\(cte)").load() }
        #expect(e?.message.contains("test: \(cte) has 2 features but \(ctr) has 1") == true)

        let bad = dir.write("te2.svm", "0.5 1:1\n")
        let e2 = thrownError { () throws(LapwingError) in
            try DataSpec.parse("libsvm:\(dir.write("b.svm", "-1 1:1\n1 1:2\n")),\(bad)").load()
        }
        #expect(e2?.message.contains("te2.svm:1: a label that is neither -1, 0 nor 1: binary labels are -1/+1 or 0/1") == true)

        let (itr, ite) = try DataSpec.parse("idx:/usr/share/datasets/fashion-mnist").load()
        #expect(itr.rows == 60000 && ite?.rows == 10000)
    }
}
