
/// A job as the daemon keeps it: who owns it, what it is, where it stands and why.
public struct JobRecord: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable, CaseIterable {
        case queued, running, paused, succeeded, failed, cancelled, interrupted

        public var isFinished: Bool { [.succeeded, .failed, .cancelled, .interrupted].contains(self) }
    }

    public var id: String
    /// The uid that submitted it: only it (or root) may pause, resume, cancel or export it.
    public var owner: UInt32
    public var spec: JobSpec
    public var state: State
    /// Why it is in this state ("waiting for 2 free cores", "cancelled by uid 1000", ...).
    public var reason: String?
    /// Where it goes in its owner's queue: higher first, then the older (nil: 0, the default;
    /// -100 to 100, at most the owner's MaxPriority in lapwingd.conf).
    public var priority: Int?
    public var submitted: Double
    public var started: Double?
    public var ended: Double?
    public var hostPID: Int32?
    /// The host's start time (clock ticks since boot, /proc/PID/stat field 22): with the pid it
    /// names the process, so a later daemon never takes another process that reused the pid
    /// for the job's host (nil in records before 0.3).
    public var hostStartTime: UInt64?
    /// Times the daemon started a new host from the checkpoint after one died (nil: never).
    public var hostRestarts: Int?
    /// Times the job went on with half the learning rate after its training diverged
    /// (`--on-divergence backoff`; nil: never).
    public var divergenceBackoffs: Int?
    /// The job's control group (relative to /sys/fs/cgroup) when the daemon has a delegated
    /// one (`JobCgroups`), and the CPU time its processes used so far.
    public var cgroup: String?
    public var cpuSeconds: Double?
    /// The per-node copies of its training data (`--node-data`) its host made (nil: none).
    public var dataCopies: [DataCopy]?
    /// Rank 0 of a job across machines submitted to several daemons (`lapwing submit --hosts`):
    /// where the other ranks meet it (its `rendezvous` event).
    public var machineMeeting: MachineMeeting?
    /// The memory its processes hold, in bytes: its control group's, else the sum of their
    /// proportional set sizes (the arena counted once); updated while it runs.
    public var memoryBytes: Int?
    /// When the job's latest checkpoint was written (seconds since 1970), as its file says.
    public var checkpointed: Double?
    /// The data files' paths on the client's side, by role (for messages only).
    public var files: [String: String]
    /// The latest progress or evaluation event.
    public var progress: HostEvent?
    public var summary: JobSummary?
    /// Why the record on disk is behind this one (its last save failed; the daemon retries).
    public var saveError: String?

    public init(
        id: String,
        owner: UInt32,
        spec: JobSpec,
        state: State,
        reason: String? = nil,
        submitted: Double,
        started: Double? = nil,
        ended: Double? = nil,
        hostPID: Int32? = nil,
        files: [String: String],
        progress: HostEvent? = nil,
        summary: JobSummary? = nil,
        saveError: String? = nil
    ) {
        self.id = id
        self.owner = owner
        self.spec = spec
        self.state = state
        self.reason = reason
        self.submitted = submitted
        self.started = started
        self.ended = ended
        self.hostPID = hostPID
        self.files = files
        self.progress = progress
        self.summary = summary
        self.saveError = saveError
    }
}
