import Foundation
import LapwingCore
import LapwingJob
import Prometheus
import Synchronization

/// The daemon's Prometheus metrics (`lapwingd --metrics-address`, or the lapwingd-metrics
/// socket): the queue (jobs by state, queue length, wait before start), each running job
/// (samples/s, samples, losses, test accuracy, bytes exchanged, averaging rounds, CPU time;
/// labels job, user, algorithm), control-socket requests' latency by verb, and with
/// CountOtherLoad the cores other processes keep busy. Names follow
/// Prometheus's conventions: `lapwing_` prefix, base units, `_total` for counters.
public final class DaemonMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    let queueWait: ValueHistogram
    let requests: Mutex<[String: ValueHistogram]> = Mutex([:])
    /// The per-job gauges now registered, by job id, to drop them once their job is over.
    let jobGauges: Mutex<[String: [Gauge]]> = Mutex([:])
    static let latencyBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]

    static func named(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    public init() {
        queueWait = registry.makeValueHistogram(
            descriptor: Self.named("lapwing_queue_wait_seconds", "Seconds jobs waited in the queue before they started"),
            buckets: [1, 5, 15, 60, 300, 900, 3600, 14400, 86400])
    }

    /// A job started after waiting `seconds` in the queue.
    func recordQueueWait(_ seconds: Double) { queueWait.record(max(0, seconds)) }

    /// One control-socket request of `verb` took `seconds` to answer.
    func recordRequest(_ verb: String, seconds: Double) {
        let h = requests.withLock { hs in
            if let h = hs[verb] { return h }
            let h = registry.makeValueHistogram(
                descriptor: Self.named(
                    "lapwing_control_request_duration_seconds", "Seconds the daemon took to answer control-socket requests, by verb"),
                labels: [("verb", verb)], buckets: Self.latencyBuckets)
            hs[verb] = h
            return h
        }
        h.record(seconds)
    }

    /// Brings the gauges up to date with the jobs and the other processes' load (at each scrape).
    func refresh(_ records: [JobRecord], otherLoad: Double? = nil, now: Double = Date().timeIntervalSince1970) {
        for state in JobRecord.State.allCases {
            registry.makeGauge(descriptor: Self.named("lapwing_jobs", "Jobs the daemon knows, by state"), labels: [("state", state.rawValue)]).set(Double(records.filter { $0.state == state }.count))
        }
        registry.makeGauge(descriptor: Self.named("lapwing_queue_length", "Jobs waiting to start")).set(
            Double(records.filter { $0.state == .queued }.count))
        if let otherLoad {
            registry.makeGauge(
                descriptor: Self.named("lapwing_other_load_cores", "Cores that processes other than Lapwing's keep busy (CountOtherLoad)")
            ).set(otherLoad)
        }
        let running = records.filter { $0.state == .running || $0.state == .paused }
        let live = Set(running.map(\.id))
        jobGauges.withLock { all in
            for (id, gauges) in all where !live.contains(id) {
                for g in gauges { registry.unregisterGauge(g) }
                all[id] = nil
            }
            for r in running {
                let labels = [("job", r.id), ("user", UserDatabase.name(of: r.owner) ?? "\(r.owner)"), ("algorithm", r.spec.algorithm.name)]
                let p = r.progress
                let values: [(String, String, Double?)] = [
                    ("lapwing_job_samples_per_second", "Training samples per second, all workers together", p?.samplesPerSecond),
                    ("lapwing_job_samples", "Samples trained so far", p?.samples.map(Double.init)),
                    ("lapwing_job_epoch", "Epochs trained so far", p?.epoch),
                    ("lapwing_job_train_loss", "Mean training loss of the workers", p?.trainLoss),
                    ("lapwing_job_test_loss", "Test loss at the latest evaluation", p?.testLoss),
                    ("lapwing_job_test_accuracy_ratio", "Test accuracy at the latest evaluation (0 to 1)", p?.testAccuracy),
                    ("lapwing_job_exchanged_bytes", "Bytes exchanged by averaging or gradient exchange", p?.bytesExchanged.map(Double.init)),
                    ("lapwing_job_averaging_rounds", "Averaging rounds so far", p?.averagingRounds.map(Double.init)),
                    ("lapwing_job_cpu_seconds", "CPU time of the job's control group", r.cpuSeconds),
                    ("lapwing_job_workers", "Worker processes (cores) of the job", Double(r.spec.workers)),
                    ("lapwing_job_running_seconds", "Seconds since the job started", r.started.map { now - $0 }),
                ]
                var gauges: [Gauge] = []
                for (name, help, value) in values {
                    guard let value, value.isFinite else { continue }
                    let g = registry.makeGauge(descriptor: Self.named(name, help), labels: labels)
                    g.set(value)
                    gauges.append(g)
                }
                all[r.id] = gauges
            }
        }
    }
}
