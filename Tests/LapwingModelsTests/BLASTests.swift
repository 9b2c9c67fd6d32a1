import Testing

@testable import LapwingModels

@Suite struct BLASTests {
    @Test func kernelSetFollowsTheFeatureFlags() {
        #expect(BLAS.coreType(forFlags: ["avx", "avx2", "fma", "sse4_2"]) == "Haswell")
        #expect(
            BLAS.coreType(forFlags: ["avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"])
                == "SkylakeX")
        #expect(BLAS.coreType(forFlags: ["avx", "sse4_2"]) == "Sandybridge")
        #expect(BLAS.coreType(forFlags: ["avx2"]) == nil || BLAS.coreType(forFlags: ["avx2"]) == "Nehalem")
        #expect(BLAS.coreType(forFlags: ["sse2"]) == nil)
    }

    @Test func setUpLoadsOneThreadedOpenBLASThatPassesTheCheck() throws {
        let choice = try BLAS.setUp()
        #expect(choice.checkPassed)
        #expect(choice.threads == 1)
        #expect(!choice.corename.isEmpty)
        if choice.source == "cpu-flags", !choice.fellBack {
            #expect(choice.corename.lowercased() == choice.requested?.lowercased())
        }
        #expect(BLAS.check() == nil)
    }
}
