/// What a data set's labels hold beyond their kind, found while they are read, so that a model
/// that cannot use them is refused with the file and line of the first label it cannot use
/// (the lines are gone once the file is parsed). The descriptions never quote a label's value
/// beyond -1, 0 and 1: error reasons reach every user who lists the job.
public struct LabelFacts: Sendable, Equatable {
    /// One label's place and what is wrong with it.
    public struct Site: Sendable, Equatable {
        /// The file and line (or byte, or row) of the label: "data.csv:7".
        public var place: String
        /// "a label that is neither -1, 0 nor 1", "a fractional label", ...
        public var problem: String
    }

    /// The first label that no binary label set (-1/+1 or 0/1) admits together with the labels
    /// before it; nil when the labels are binary.
    public var firstNonBinary: Site?
    /// The first label that is not a class index (a non-negative integer below 2^24); nil when
    /// every label is one.
    public var firstNonClass: Site?
    /// Distinct label values, counted up to 2 (1: every label is the same); 0 when unknown.
    public var distinctValues: Int

    public init(firstNonBinary: Site? = nil, firstNonClass: Site? = nil, distinctValues: Int = 0) {
        self.firstNonBinary = firstNonBinary
        self.firstNonClass = firstNonClass
        self.distinctValues = distinctValues
    }

    /// Scans labels as read (before binary labels are rewritten to ±1); `place(i)` names row i's
    /// place in full ("data.csv:7", "labels-idx1-ubyte: byte 12").
    static func scan(_ labels: UnsafePointer<Float>, count: Int, place: (Int) -> String) -> LabelFacts {
        var facts = LabelFacts(distinctValues: count == 0 ? 0 : 1)
        guard count > 0 else { return facts }
        let first = labels[0]
        var sawMinusOne = false, sawZero = false
        for i in 0..<count {
            let v = labels[i]
            if facts.distinctValues == 1 && v != first { facts.distinctValues = 2 }
            if facts.firstNonBinary == nil {
                if v != 1 && v != -1 && v != 0 {
                    facts.firstNonBinary = Site(place: place(i), problem: "a label that is neither -1, 0 nor 1")
                } else if v == -1 && sawZero {
                    facts.firstNonBinary = Site(place: place(i), problem: "a label -1 after labels 0 (one set: -1/+1 or 0/1)")
                } else if v == 0 && sawMinusOne {
                    facts.firstNonBinary = Site(place: place(i), problem: "a label 0 after labels -1 (one set: -1/+1 or 0/1)")
                }
                if v == -1 { sawMinusOne = true }
                if v == 0 { sawZero = true }
            }
            if facts.firstNonClass == nil {
                if v < 0 {
                    facts.firstNonClass = Site(place: place(i), problem: "a negative label")
                } else if v != v.rounded(.towardZero) {
                    facts.firstNonClass = Site(place: place(i), problem: "a fractional label")
                } else if v >= 16_777_216 {
                    facts.firstNonClass = Site(place: place(i), problem: "a label of 2^24 or more")
                }
            }
            if facts.distinctValues == 2 && facts.firstNonBinary != nil && facts.firstNonClass != nil { break }
        }
        return facts
    }
}
