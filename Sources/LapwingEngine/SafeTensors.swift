import Foundation
import LapwingCore

/// The safetensors format (8-byte little-endian header length, a JSON header naming each
/// tensor's dtype, shape and byte range, then the raw little-endian data), for Float32 tensors.
/// Files load with Python's `safetensors.numpy.load_file`.
public enum SafeTensors {
    public struct Tensor: Sendable, Equatable {
        public var name: String
        public var shape: [Int]
        public var values: [Float]
        public init(name: String, shape: [Int], values: [Float]) {
            self.name = name
            self.shape = shape
            self.values = values
        }
    }

    /// Writes the tensors (and string metadata) to `path` atomically.
    public static func write(_ tensors: [Tensor], metadata: [String: String] = [:], to path: String)
        throws(LapwingError)
    {
        var header: [String: Any] = [:]
        var offset = 0
        for t in tensors {
            precondition(t.shape.reduce(1, *) == t.values.count, "tensor \(t.name): shape and values disagree")
            header[t.name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + 4 * t.values.count]]
            offset += 4 * t.values.count
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json: [UInt8]
        do {
            json = Array(try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        } catch {
            throw LapwingError(.internalError, "\(path): could not encode the safetensors header", detail: "\(error)")
        }
        while json.count % 8 != 0 { json.append(0x20) }
        var prefix = [UInt8](repeating: 0, count: 8)
        for i in 0..<8 { prefix[i] = UInt8(truncatingIfNeeded: UInt64(json.count) >> (8 * UInt64(i))) }
        try AtomicFile.write(to: path) { (w: inout FileWriter) throws(LapwingError) in
            try w.write(prefix)
            try w.write(json)
            for t in tensors { try w.write(contentsOf: t.values) }
        }
    }

    /// Reads a Float32 safetensors file (for tests and `lapwing` tools).
    public static func read(_ path: String) throws(LapwingError) -> (tensors: [Tensor], metadata: [String: String]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LapwingError(.notFound, "\(path): cannot read the model file")
        }
        let bytes = [UInt8](data)
        guard bytes.count >= 8 else { throw LapwingError(.invalidData, "\(path): byte 0: shorter than a header length") }
        var n = 0
        for i in 0..<8 { n |= Int(bytes[i]) << (8 * i) }
        guard n <= bytes.count - 8,
            let header = try? JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + n)])) as? [String: Any]
        else { throw LapwingError(.invalidData, "\(path): byte 8: the header is not a JSON object of \(n) bytes") }
        let base = 8 + n
        var tensors: [Tensor] = []
        for (name, value) in header where name != "__metadata__" {
            guard let d = value as? [String: Any], d["dtype"] as? String == "F32", let shape = d["shape"] as? [Int],
                let range = d["data_offsets"] as? [Int], range.count == 2, range[0] <= range[1],
                base + range[1] <= bytes.count, range[1] - range[0] == 4 * shape.reduce(1, *)
            else { throw LapwingError(.invalidData, "\(path): tensor '\(name)': not a valid F32 entry") }
            var values = [Float](repeating: 0, count: shape.reduce(1, *))
            values.withUnsafeMutableBytes { dst in
                bytes.withUnsafeBytes { src in
                    dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[(base + range[0])..<(base + range[1])]))
                }
            }
            tensors.append(Tensor(name: name, shape: shape, values: values))
        }
        tensors.sort { $0.name < $1.name }
        return (tensors, header["__metadata__"] as? [String: String] ?? [:])
    }
}
