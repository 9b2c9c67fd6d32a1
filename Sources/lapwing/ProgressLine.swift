import LapwingCore
import LapwingEngine
import LapwingJob

#if canImport(Glibc)
import Glibc
#endif

/// Shows a job's progress on stderr: one line redrawn in place on a terminal, plain lines
/// (at most one per `plainInterval` seconds, plus every evaluation) when piped.
struct ProgressLine {
    let tty: Bool
    let plainInterval: Double
    private var lastPlain = -1e9
    private var lastAccuracy: Double?
    private var drawn = false

    /// Written before each line (a study's "[2/9 lap-sgd] ").
    let prefix: String

    init(plainInterval: Double = 2, prefix: String = "") {
        tty = isatty(2) != 0
        self.plainInterval = plainInterval
        self.prefix = prefix
    }

    mutating func show(_ e: HostEvent) {
        if let acc = e.testAccuracy { lastAccuracy = acc }
        let line = prefix + Self.format(e, accuracy: lastAccuracy)
        if tty {
            writeError("\r\u{1B}[K" + line)
            drawn = true
        } else if e.event == .evaluation || (e.elapsed ?? 0) - lastPlain >= plainInterval {
            lastPlain = e.elapsed ?? 0
            writeError(line + "\n")
        }
    }

    /// Ends the redrawn line before other output.
    mutating func finish() {
        if tty && drawn { writeError("\n") }
        drawn = false
    }

    static func format(_ e: HostEvent, accuracy: Double?) -> String {
        var parts: [String] = []
        if let epoch = e.epoch, let epochs = e.epochs { parts.append("epoch \(fixed(epoch, 2))/\(fixed(epochs, 0))") }
        if let sps = e.samplesPerSecond { parts.append("\(si(sps)) samples/s") }
        if let loss = e.trainLoss { parts.append("train loss \(fixed(loss, 4))") }
        if e.event == .evaluation, let loss = e.testLoss { parts.append("test loss \(fixed(loss, 4))") }
        if let acc = accuracy { parts.append("test acc \(fixed(acc * 100, 2))%") }
        if let epoch = e.epoch, let epochs = e.epochs, let elapsed = e.elapsed, epoch > 0 {
            parts.append("ETA \(clock(max(0, elapsed * (epochs / epoch - 1))))")
        }
        return parts.joined(separator: " | ")
    }

    static func fixed(_ v: Double, _ digits: Int) -> String {
        guard v.isFinite else { return "\(v)" }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let n = Int((abs(v) * scale).rounded())
        let whole = n / Int(scale)
        let frac = n % Int(scale)
        var s = (v < 0 && n != 0 ? "-" : "") + "\(whole)"
        if digits > 0 {
            let f = String(frac)
            s += "." + String(repeating: "0", count: digits - f.count) + f
        }
        return s
    }

    static func si(_ v: Double) -> String {
        if v >= 1e6 { return fixed(v / 1e6, 2) + "M" }
        if v >= 1e3 { return fixed(v / 1e3, 1) + "k" }
        return fixed(v, 0)
    }

    static func clock(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        let (h, m, sec) = (s / 3600, (s / 60) % 60, s % 60)
        let mm = m < 10 ? "0\(m)" : "\(m)", ss = sec < 10 ? "0\(sec)" : "\(sec)"
        return h > 0 ? "\(h):\(mm):\(ss)" : "\(m):\(ss)"
    }
}
