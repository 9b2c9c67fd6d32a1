import LapwingCore
import LapwingProtocol

/// What the control socket lets clients hold, in one place (docs/protocol.md, "Limits"). A client
/// that goes past one is sent a structured error (`busy` for a cap, `bad_frame` for a deadline,
/// `invalid_argument` for descriptors) and closed; everyone else is served as before.
///
/// Memory per connection: at most `freeBytesPerConnection` of unfinished input and unread replies
/// of its own; beyond that it draws on its uid's `bufferedBytesPerUID` and on the daemon's
/// `bufferedBytes`, and one that would overdraw is closed. A frame being received is never more
/// than 4 + 1 MiB (the decoder holds one unfinished frame), and replies waiting for a client that
/// does not read stop at `outboxBytes` and `outboxDescriptors`. So all connections of one uid hold
/// at most connectionsPerUID × 64 KiB + 16 MiB (32 MiB), and all of them 1024 × 64 KiB + 64 MiB
/// (128 MiB), plus one 64 KiB read buffer.
public struct ControlLimits: Sendable, Equatable {
    /// Connections open at once, in all (each costs a descriptor).
    public var connections = 1024
    /// Connections open at once by one uid (a load of 200 concurrent clients of one user fits).
    public var connectionsPerUID = 256
    /// A connection that has not completed its hello this long after connecting is closed.
    public var helloTimeout: Duration = .seconds(10)
    /// A frame whose first byte arrived this long ago and that is still unfinished closes its connection.
    public var frameTimeout: Duration = .seconds(30)
    /// Unfinished input plus unread replies each connection may hold of its own.
    public var freeBytesPerConnection = 64 << 10
    /// Beyond each connection's free bytes, what all connections of one uid may buffer.
    public var bufferedBytesPerUID = 16 << 20
    /// Beyond each connection's free bytes, what all connections together may buffer.
    public var bufferedBytes = 64 << 20
    /// Descriptors held for one uid: received in unfinished frames, or attached to unread replies.
    public var heldDescriptorsPerUID = 128
    /// Descriptors held for all connections together.
    public var heldDescriptors = 512
    /// Replies queued for one connection that does not read them, in bytes and in descriptors.
    public var outboxBytes = 4 << 20
    public var outboxDescriptors = ControlProtocol.maxDescriptorsPerFrame
    /// Descriptors the control socket leaves to everything else (jobs, logs, state files).
    public static let reservedDescriptors = 256

    public init() {}

    /// The environment variables that override limits (read by lapwingd; tests use them to
    /// shorten the deadlines): name, and how to apply a whole number to the limits.
    static let environmentOverrides: [(name: String, apply: @Sendable (inout ControlLimits, Int) -> Void)] = [
        ("LAPWING_CONTROL_MAX_CONNECTIONS", { $0.connections = $1 }),
        ("LAPWING_CONTROL_MAX_CONNECTIONS_PER_UID", { $0.connectionsPerUID = $1 }),
        ("LAPWING_CONTROL_HELLO_TIMEOUT_MS", { $0.helloTimeout = .milliseconds($1) }),
        ("LAPWING_CONTROL_FRAME_TIMEOUT_MS", { $0.frameTimeout = .milliseconds($1) }),
    ]

    /// These limits with the overrides found in `environment` applied. A value that is not a
    /// whole number of at least 1 is refused, naming the variable.
    public func overridden(by environment: (String) -> String?) throws(LapwingError) -> ControlLimits {
        var limits = self
        for (name, apply) in Self.environmentOverrides {
            guard let text = environment(name), !text.isEmpty else { continue }
            guard let value = Int(text), value >= 1, value <= 1 << 30 else {
                throw LapwingError(.invalidArgument, "\(name)=\(text): not a whole number from 1 to \(1 << 30)")
            }
            apply(&limits, value)
        }
        return limits
    }

    /// These limits shrunk, if need be, so that connections and held descriptors fit in
    /// `descriptorLimit` (RLIMIT_NOFILE) with `reservedDescriptors` (or a quarter, if less) to spare.
    public func fitting(descriptorLimit: Int) -> ControlLimits {
        let room = descriptorLimit - min(Self.reservedDescriptors, descriptorLimit / 4)
        guard connections + heldDescriptors > room else { return self }
        var limits = self
        limits.connections = max(4, min(connections, room * 2 / 3))
        limits.heldDescriptors = max(ControlProtocol.maxDescriptorsPerFrame, min(heldDescriptors, room - limits.connections))
        limits.connectionsPerUID = min(connectionsPerUID, limits.connections)
        limits.heldDescriptorsPerUID = min(heldDescriptorsPerUID, limits.heldDescriptors)
        return limits
    }

    /// How often the server looks for connections past a deadline: once a second, or more often
    /// when a deadline is shorter than two seconds.
    var sweepInterval: Duration { min(.seconds(1), min(helloTimeout, frameTimeout) / 2) }
}

/// What the connections of each uid hold against `ControlLimits`: connections, buffered bytes
/// beyond each connection's free share, held descriptors. Kept by the control server's one thread.
struct ControlLedger {
    struct Usage {
        var connections = 0
        var bytes = 0
        var descriptors = 0
    }

    /// What one connection is charged for.
    struct Charge: Equatable {
        var bytes = 0
        var descriptors = 0
    }

    let limits: ControlLimits
    private(set) var perUID: [UInt32: Usage] = [:]
    private(set) var total = Usage()

    init(limits: ControlLimits) { self.limits = limits }

    /// Counts a new connection of `uid`, or says why it is refused (then nothing is counted).
    mutating func admit(uid: UInt32) -> ProtocolError? {
        let mine = perUID[uid]?.connections ?? 0
        if mine >= limits.connectionsPerUID {
            return ProtocolError(
                .busy, "uid \(uid) has \(mine) connections open to lapwingd, the most one uid may have",
                detail: capsDetail)
        }
        if total.connections >= limits.connections {
            return ProtocolError(
                .busy, "lapwingd has \(total.connections) connections open, the most it takes", detail: capsDetail)
        }
        perUID[uid, default: Usage()].connections += 1
        total.connections += 1
        return nil
    }

    private var capsDetail: String {
        "limits: \(limits.connectionsPerUID) connections per uid, \(limits.connections) in all; retry when some have closed"
    }

    /// The charge of a connection that buffers `bytes` (unfinished input and unread replies) and
    /// holds `descriptors`.
    func charge(bufferedBytes bytes: Int, descriptors: Int) -> Charge {
        Charge(bytes: max(0, bytes - limits.freeBytesPerConnection), descriptors: descriptors)
    }

    /// Moves a connection of `uid` from charge `old` to `new`; says which budget is overdrawn, if
    /// one is (the new charge stands either way: `close` gives it back).
    mutating func recharge(uid: UInt32, from old: Charge, to new: Charge) -> ProtocolError? {
        guard old != new else { return nil }
        let (db, dd) = (new.bytes - old.bytes, new.descriptors - old.descriptors)
        var mine = perUID[uid, default: Usage()]
        mine.bytes += db
        mine.descriptors += dd
        perUID[uid] = mine
        total.bytes += db
        total.descriptors += dd
        let free = limits.freeBytesPerConnection >> 10
        if db > 0 && mine.bytes > limits.bufferedBytesPerUID {
            return ProtocolError(
                .busy, "uid \(uid) buffers \(mine.bytes) bytes in lapwingd beyond \(free) KiB per connection",
                detail: "the limit per uid is \(limits.bufferedBytesPerUID) bytes of unfinished frames and unread replies")
        }
        if db > 0 && total.bytes > limits.bufferedBytes {
            return ProtocolError(
                .busy, "lapwingd buffers \(total.bytes) bytes for its clients beyond \(free) KiB per connection",
                detail: "the limit in all is \(limits.bufferedBytes) bytes of unfinished frames and unread replies")
        }
        if dd > 0 && mine.descriptors > limits.heldDescriptorsPerUID {
            return ProtocolError(
                .busy, "uid \(uid) has lapwingd hold \(mine.descriptors) descriptors",
                detail: "the limit per uid is \(limits.heldDescriptorsPerUID) in unfinished frames and unread replies")
        }
        if dd > 0 && total.descriptors > limits.heldDescriptors {
            return ProtocolError(
                .busy, "lapwingd holds \(total.descriptors) descriptors for its clients",
                detail: "the limit in all is \(limits.heldDescriptors) in unfinished frames and unread replies")
        }
        return nil
    }

    /// A connection of `uid` with charge `charge` has closed.
    mutating func close(uid: UInt32, charge: Charge) {
        _ = recharge(uid: uid, from: charge, to: Charge())
        perUID[uid, default: Usage()].connections -= 1
        total.connections -= 1
        if let u = perUID[uid], u.connections == 0 && u.bytes == 0 && u.descriptors == 0 { perUID[uid] = nil }
    }
}
