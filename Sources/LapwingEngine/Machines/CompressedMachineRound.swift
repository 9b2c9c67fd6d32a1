import LapwingCore
import LapwingJob

/// A machine-level round through the job's compressor (`--compress` with `--mpi`): as the
/// averager's compressed round (`CompressedAveragingRound`), with the machines as participants
/// and an all-gather of the compressed messages in place of the arena's exchange buffers.
///
/// Every rank keeps the same anchor z (the machines' common model, identical at the start: the
/// same seeded initialisation). A round: c = s_m - z; each codec phase writes this rank's message
/// and all-gathers everyone's (their sizes first, then the bytes); mean = (1/N) sum of what the
/// messages carry; z += mean; every replica gets mean - Q_m, where Q_m is what this rank's own
/// message carried, so the part of c that the compression lost stays on this machine for the
/// next round. Every rank decodes the same bytes in the same order, so the anchors stay equal bit
/// for bit. On the wire per round: this rank's compressed messages (`bytes`) and 4 bytes of size
/// per phase.
struct CompressedMachineRound {
    var codec: any ExchangeCodec
    let machine: MachineRank
    let count: Int
    /// N buffers of d floats, one allocation, rank k's at offset k * d * 4.
    let storage: UnsafeMutablePointer<Float>
    let buffers: [ExchangeBuffer]
    let anchor: UnsafeMutablePointer<Float>
    let contribution: UnsafeMutablePointer<Float>
    let mean: UnsafeMutablePointer<Float>

    /// `initial`: the machines' common model when training starts.
    init(_ compression: Compression, machine: MachineRank, count: Int, initial: UnsafePointer<Float>) throws(LapwingError) {
        guard machine.size * count * MemoryLayout<Float>.stride <= Int(Int32.max) else {
            throw LapwingError(
                .unsupported, "--compress with --mpi: \(machine.size) machines' messages of \(count) floats exceed what one all-gather takes (2 GiB)")
        }
        codec = compression.codec(dimension: count, participants: machine.size)
        self.machine = machine
        self.count = count
        let storage = UnsafeMutablePointer<Float>.allocate(capacity: machine.size * count)
        storage.initialize(repeating: 0, count: machine.size * count)
        self.storage = storage
        buffers = (0..<machine.size).map { ExchangeBuffer(storage + $0 * count, count: count) }
        anchor = .allocate(capacity: count)
        anchor.update(from: initial, count: count)
        contribution = .allocate(capacity: count)
        mean = .allocate(capacity: count)
    }

    func deallocate() {
        storage.deallocate()
        anchor.deallocate()
        contribution.deallocate()
        mean.deallocate()
    }

    /// One round from this machine's model `s`; adds the result to every replica. Returns the
    /// bytes this rank put on the wire.
    mutating func round(_ s: UnsafePointer<Float>, replicas: [UnsafeMutablePointer<Float>], progress: Double) throws(LapwingError)
        -> Int
    {
        Vectors.difference(s, anchor, into: contribution, count: count)
        let mine = buffers[machine.rank]
        let stride = Int32(count * MemoryLayout<Float>.stride)
        var bytes = 0
        for phase in 0..<codec.phases {
            codec.prepare(phase: phase, all: buffers)
            codec.write(phase: phase, contribution: contribution, into: mine, participant: machine.rank, progress: progress)
            let sizes = try MPI.gather(Int32(mine.used), rank: machine.rank, size: machine.size)
            for (k, used) in sizes.enumerated() where used < ExchangeBuffer.headerBytes || Int(used) > buffers[k].capacity {
                throw LapwingError(.invalidData, "machine level: rank \(k)'s compressed message of \(used) bytes does not fit \(buffers[k].capacity)")
            }
            try MPI.gather(UnsafeMutableRawPointer(storage), counts: sizes, offsets: (0..<machine.size).map { Int32($0) * stride })
            bytes += mine.used + MemoryLayout<Int32>.stride
        }
        codec.reduce(all: buffers)
        mean.update(repeating: 0, count: count)
        codec.addSum(buffers, scale: 1 / Float(machine.size), into: mean)
        Vectors.add(mean, into: anchor, count: count)
        for x in replicas {
            Vectors.add(mean, into: x, count: count)
            codec.addOwn(mine, scale: -1, into: x)
        }
        return bytes
    }
}
