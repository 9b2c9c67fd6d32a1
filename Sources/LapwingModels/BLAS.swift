import CLapwing
import LapwingCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// How the BLAS kernel set was chosen, and whether it passed the start-up check.
public struct BLASChoice: Codable, Sendable, Equatable {
    /// The OPENBLAS_CORETYPE we asked for (nil: OpenBLAS's own choice).
    public var requested: String?
    /// Where the request came from: "environment" (the user's OPENBLAS_CORETYPE), "cpu-flags",
    /// or "openblas" (no flag set matched; OpenBLAS chose).
    public var source: String
    /// The kernel set OpenBLAS reports running.
    public var corename: String
    public var threads: Int
    /// The start-up GEMM agreed with the plain reference.
    public var checkPassed: Bool
    /// The requested kernel failed the check and OpenBLAS's own choice is in use instead.
    public var fellBack: Bool
    public var note: String?
}

/// OpenBLAS, set up once per process: kernel set from the CPU's feature flags (a user's own
/// OPENBLAS_CORETYPE wins), one thread, and a small GEMM checked against a plain reference,
/// falling back to OpenBLAS's own choice when they disagree.
public enum BLAS {
    private static let state = Mutex<BLASChoice?>(nil)

    /// The OpenBLAS core type for a CPU with these /proc/cpuinfo flags, or nil to let
    /// OpenBLAS choose. Never a kernel set the CPU cannot run.
    public static func coreType(forFlags flags: Set<String>) -> String? {
        let avx512 = ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].allSatisfy(flags.contains)
        if avx512 { return flags.contains("avx512_bf16") ? "Cooperlake" : "SkylakeX" }
        if flags.contains("avx2") && flags.contains("fma") { return "Haswell" }
        if flags.contains("avx") { return "Sandybridge" }
        if flags.contains("sse4_2") { return "Nehalem" }
        return nil
    }

    /// The CPU flags a kernel set needs (nil: unknown name, let OpenBLAS judge it).
    public static func requiredFlags(coreType: String) -> [String]? {
        switch coreType.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids":
            return ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"]
        case "haswell", "zen", "skylake", "cooperlake-avx2": return ["avx2", "fma"]
        case "sandybridge", "bulldozer", "piledriver", "steamroller", "excavator": return ["avx"]
        case "nehalem", "barcelona": return ["sse4_2"]
        case "prescott", "core2", "penryn", "dunnington", "atom", "opteron", "athlon": return []
        default: return nil
        }
    }

    /// The feature flags of the first CPU in /proc/cpuinfo.
    public static func cpuFlags(cpuinfo path: String = "/proc/cpuinfo") -> Set<String> {
        guard let f = fopen(path, "r") else { return [] }
        defer { fclose(f) }
        var line: UnsafeMutablePointer<CChar>? = nil
        var cap = 0
        defer { free(line) }
        while getline(&line, &cap, f) > 0 {
            let s = String(cString: line!)
            if s.hasPrefix("flags") || s.hasPrefix("Features") {
                guard let colon = s.firstIndex(of: ":") else { continue }
                return Set(s[s.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
            }
        }
        return []
    }

    /// The choice in force, setting BLAS up first if this process has not yet.
    @discardableResult
    public static func setUp() throws(LapwingError) -> BLASChoice {
        let result: Result<BLASChoice, LapwingError> = state.withLock { current in
            if let current { return .success(current) }
            do throws(LapwingError) {
                let choice = try load()
                current = choice
                return .success(choice)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private static func env(_ name: String) -> String? {
        guard let v = getenv(name) else { return nil }
        let s = String(cString: v)
        return s.isEmpty ? nil : s
    }

    private static func load() throws(LapwingError) -> BLASChoice {
        let flags = cpuFlags()
        var requested: String?
        var source: String
        var refused: String?
        if let user = env("OPENBLAS_CORETYPE"),
            let missing = requiredFlags(coreType: user)?.filter({ !flags.contains($0) }), !missing.isEmpty
        {
            // Forcing kernels the CPU cannot run would die of SIGILL; say so and choose safely.
            refused = "OPENBLAS_CORETYPE=\(user) needs CPU flags \(missing.joined(separator: ", ")) that this CPU lacks"
            requested = coreType(forFlags: flags)
            source = requested == nil ? "openblas" : "cpu-flags"
        } else if let user = env("OPENBLAS_CORETYPE") {
            requested = user
            source = "environment"
        } else if let fromFlags = coreType(forFlags: flags) {
            requested = fromFlags
            source = "cpu-flags"
        } else {
            requested = nil
            source = "openblas"
        }
        // Testing knob: pretend the requested kernels computed a wrong result.
        let simulateMismatch = env("LAPWING_BLAS_SIMULATE_MISMATCH") == "1"

        try open(requested)
        var choice = BLASChoice(
            requested: requested, source: source, corename: corename(), threads: Int(lw_blas_threads()),
            checkPassed: false, fellBack: false, note: refused)
        let simulated = simulateMismatch && requested != nil
            ? "check disagreed with the reference (simulated by LAPWING_BLAS_SIMULATE_MISMATCH)" : nil
        guard let problem = check() ?? simulated else {
            choice.checkPassed = true
            return choice
        }
        choice.note = [refused, problem].compactMap { $0 }.joined(separator: "; ")
        guard requested != nil else {
            throw LapwingError(.internalError, "OpenBLAS (\(choice.corename)) computes wrong results", detail: choice.note)
        }
        // Fall back to OpenBLAS's own kernel choice, which its authors vouch for on this CPU.
        try open(nil)
        choice.corename = corename()
        choice.threads = Int(lw_blas_threads())
        choice.fellBack = true
        if let problem = check() {
            throw LapwingError(.internalError, "OpenBLAS (\(choice.corename)) computes wrong results", detail: problem)
        }
        choice.checkPassed = true
        choice.note = "\(requested!) kernels failed the start-up check (\(choice.note ?? "")); using \(choice.corename)"
        return choice
    }

    private static func open(_ coretype: String?) throws(LapwingError) {
        var err = [CChar](repeating: 0, count: 512)
        let rc = err.withUnsafeMutableBufferPointer { lw_blas_load(coretype, 1, $0.baseAddress, 512) }
        if rc != 0 {
            let message = err.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw LapwingError(.notFound, "OpenBLAS could not be loaded", detail: message + " (install libopenblas0)")
        }
    }

    private static func corename() -> String { String(cString: lw_blas_corename()) }

    /// Checks sgemm against a plain double-precision reference on shapes like the models' own,
    /// in every transposition. Returns a description of the first disagreement, or nil.
    static func check() -> String? {
        var rng = SeededGenerator(seed: 0x1a9_b1a5)
        for (m, n, k) in [(16, 256, 784), (33, 17, 65), (1, 10, 256)] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a = (0..<(m * k)).map { _ in rng.nextUnitFloat() - 0.5 }
                let b = (0..<(k * n)).map { _ in rng.nextUnitFloat() - 0.5 }
                var c = [Float](repeating: 0.25, count: m * n)
                let lda = ta ? m : k, ldb = tb ? k : n
                lw_sgemm(ta ? 1 : 0, tb ? 1 : 0, Int32(m), Int32(n), Int32(k), 1.5, a, Int32(lda), b, Int32(ldb), 0.5, &c, Int32(n))
                for i in 0..<m {
                    for j in 0..<n {
                        var s = 0.0
                        for p in 0..<k {
                            let av = ta ? a[p * lda + i] : a[i * lda + p]
                            let bv = tb ? b[j * ldb + p] : b[p * ldb + j]
                            s += Double(av) * Double(bv)
                        }
                        let ref = 1.5 * s + 0.5 * 0.25
                        if abs(Double(c[i * n + j]) - ref) > 1e-4 * max(1, abs(ref)) * Double(k).squareRoot() {
                            return "sgemm \(m)x\(n)x\(k) trans=(\(ta),\(tb)) gave \(c[i * n + j]) at (\(i),\(j)), reference \(ref)"
                        }
                    }
                }
            }
        }
        return nil
    }
}

/// Row-major C = alpha op(A) op(B) + beta C through the loaded OpenBLAS (see `BLAS.setUp`).
@inline(__always)
func sgemm(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
    _ a: UnsafePointer<Float>, lda: Int, _ b: UnsafePointer<Float>, ldb: Int,
    beta: Float, _ c: UnsafeMutablePointer<Float>, ldc: Int
) {
    lw_sgemm(
        transA ? 1 : 0, transB ? 1 : 0, Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c,
        Int32(ldc))
}
