import LapwingData
import Testing

/// The real data sets the project's set-up installs load with the right counts.
@Suite struct InstalledDataSetsTests {
    @Test func fashionMNISTLoadsWithTheRightCounts() throws {
        let (train, test) = try IDXReader.loadDirectory("/usr/share/datasets/fashion-mnist")
        #expect(train.rows == 60000 && train.cols == 784 && !train.isSparse)
        #expect(test.rows == 10000 && test.cols == 784)
        #expect(train.labelKind == .multiclass(classes: 10) && test.labelKind == .multiclass(classes: 10))
        #expect(train.label(0) == 9)
        #expect(train.denseRow(0).allSatisfy { $0 >= 0 && $0 <= 1 })
    }

    @Test func heartScaleLoadsAsBinarySparseData() throws {
        let d = try LIBSVMReader.load(path: "/usr/share/doc/liblinear-tools/examples/heart_scale")
        #expect(d.rows == 270 && d.cols == 13 && d.isSparse)
        #expect(d.labelKind == .binary)
        #expect((0..<d.rows).allSatisfy { d.label($0) == 1 || d.label($0) == -1 })
    }
}
