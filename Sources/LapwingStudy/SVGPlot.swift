import Foundation

/// A line chart written as SVG by Lapwing itself (no plotting library to install, and a file a
/// browser, an editor and a README all show): axes with ticks and labels, linear or log-scaled
/// x, one polyline with markers per series, a legend on the right, a white background.
public struct SVGPlot: Sendable {
    public struct Series: Sendable {
        public var label: String
        /// A CSS colour ("#4e79a7").
        public var colour: String
        /// An SVG stroke-dasharray ("" for a solid line).
        public var dash: String
        public var points: [(x: Double, y: Double)]

        public init(label: String, colour: String, dash: String = "", points: [(x: Double, y: Double)]) {
            self.label = label
            self.colour = colour
            self.dash = dash
            self.points = points
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var logX = false
    public var series: [Series]
    /// How x tick values are written (e.g. bytes in SI units).
    public var xTick: @Sendable (Double) -> String = { SVGPlot.tickText($0) }

    public init(title: String, xLabel: String, yLabel: String, logX: Bool = false, series: [Series]) {
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.logX = logX
        self.series = series
    }

    static let width = 880.0, height = 480.0
    static let left = 80.0, right = 250.0, top = 48.0, bottom = 64.0

    public func svg() -> String {
        let (w, h) = (Self.width, Self.height)
        let (px0, px1, py0, py1) = (Self.left, w - Self.right, Self.top, h - Self.bottom)
        let shown = series.map { s in s.points.filter { $0.x.isFinite && $0.y.isFinite && (!logX || $0.x > 0) } }
        let xs = shown.flatMap { $0.map(\.x) }, ys = shown.flatMap { $0.map(\.y) }
        let xTicks = logX ? Self.logTicks(xs.min() ?? 1, xs.max() ?? 10) : Self.linearTicks(xs.min() ?? 0, xs.max() ?? 1)
        let yTicks = Self.linearTicks(ys.min() ?? 0, ys.max() ?? 1)
        let (xlo, xhi) = (xTicks.first ?? 0, xTicks.last ?? 1), (ylo, yhi) = (yTicks.first ?? 0, yTicks.last ?? 1)
        func fx(_ x: Double) -> Double {
            let t = logX ? (log10(x) - log10(xlo)) / max(log10(xhi) - log10(xlo), 1e-12) : (x - xlo) / max(xhi - xlo, 1e-300)
            return px0 + t * (px1 - px0)
        }
        func fy(_ y: Double) -> Double { py1 - (y - ylo) / max(yhi - ylo, 1e-300) * (py1 - py0) }
        var out = [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(w))\" height=\"\(Int(h))\" viewBox=\"0 0 \(Int(w)) \(Int(h))\" font-family=\"sans-serif\" font-size=\"12\">",
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
            "<text x=\"\(f(w / 2))\" y=\"24\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">\(Self.escape(title))</text>",
        ]
        for t in xTicks {
            let x = fx(t)
            out.append("<line x1=\"\(f(x))\" y1=\"\(f(py0))\" x2=\"\(f(x))\" y2=\"\(f(py1))\" stroke=\"#e4e4e4\"/>")
            out.append("<text x=\"\(f(x))\" y=\"\(f(py1 + 18))\" text-anchor=\"middle\">\(Self.escape(xTick(t)))</text>")
        }
        for t in yTicks {
            let y = fy(t)
            out.append("<line x1=\"\(f(px0))\" y1=\"\(f(y))\" x2=\"\(f(px1))\" y2=\"\(f(y))\" stroke=\"#e4e4e4\"/>")
            out.append("<text x=\"\(f(px0 - 8))\" y=\"\(f(y + 4))\" text-anchor=\"end\">\(Self.escape(Self.tickText(t)))</text>")
        }
        out.append("<rect x=\"\(f(px0))\" y=\"\(f(py0))\" width=\"\(f(px1 - px0))\" height=\"\(f(py1 - py0))\" fill=\"none\" stroke=\"#333\"/>")
        out.append("<text x=\"\(f((px0 + px1) / 2))\" y=\"\(f(h - 18))\" text-anchor=\"middle\" font-size=\"13\">\(Self.escape(xLabel))</text>")
        out.append(
            "<text transform=\"translate(20 \(f((py0 + py1) / 2))) rotate(-90)\" text-anchor=\"middle\" font-size=\"13\">\(Self.escape(yLabel))</text>")
        for (s, points) in zip(series, shown) where !points.isEmpty {
            let dash = s.dash.isEmpty ? "" : " stroke-dasharray=\"\(s.dash)\""
            let path = points.map { "\(f(fx($0.x))),\(f(fy($0.y)))" }.joined(separator: " ")
            out.append("<polyline fill=\"none\" stroke=\"\(s.colour)\" stroke-width=\"2\"\(dash) points=\"\(path)\"/>")
            for p in points {
                out.append("<circle cx=\"\(f(fx(p.x)))\" cy=\"\(f(fy(p.y)))\" r=\"2.5\" fill=\"\(s.colour)\"/>")
            }
        }
        let lx = px1 + 16
        for (i, (s, points)) in zip(series, shown).enumerated() {
            let y = py0 + 8 + Double(i) * 18
            let dash = s.dash.isEmpty ? "" : " stroke-dasharray=\"\(s.dash)\""
            out.append("<line x1=\"\(f(lx))\" y1=\"\(f(y))\" x2=\"\(f(lx + 26))\" y2=\"\(f(y))\" stroke=\"\(s.colour)\" stroke-width=\"2\"\(dash)/>")
            let note = points.isEmpty ? (logX ? " (no bytes)" : " (no data)") : ""
            out.append("<text x=\"\(f(lx + 32))\" y=\"\(f(y + 4))\">\(Self.escape(s.label + note))</text>")
        }
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }

    func f(_ v: Double) -> String { String(format: "%.1f", v) }

    /// About five round ticks (1, 2 or 5 times a power of ten) that cover [lo, hi].
    static func linearTicks(_ lo: Double, _ hi: Double) -> [Double] {
        var (lo, hi) = (lo, hi)
        if hi - lo < 1e-12 * max(1, abs(hi)) {
            let pad = max(abs(lo) * 0.05, 1e-3)
            (lo, hi) = (lo - pad, hi + pad)
        }
        let raw = (hi - lo) / 5
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        let first = floor(lo / step), last = ceil(hi / step)
        return stride(from: first, through: last, by: 1).map { $0 * step }
    }

    /// Powers of ten that cover [lo, hi] (lo > 0), with 2 and 5 times them when the range spans
    /// under two decades.
    static func logTicks(_ lo: Double, _ hi: Double) -> [Double] {
        var a = floor(log10(lo)), b = ceil(log10(hi))
        if b <= a { b = a + 1 }
        if b - a < 1 { a -= 1 }
        var ticks: [Double] = []
        for e in stride(from: a, through: b, by: 1) {
            let p = pow(10, e)
            ticks.append(p)
            if b - a < 2 && e < b { ticks += [2 * p, 5 * p] }
        }
        return ticks.sorted()
    }

    /// A tick value with as few digits as it needs.
    public static func tickText(_ v: Double) -> String {
        if v == 0 { return "0" }
        if abs(v) >= 1e5 || abs(v) < 1e-3 { return String(format: "%.0e", v) }
        var s = String(format: "%.3f", v)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
