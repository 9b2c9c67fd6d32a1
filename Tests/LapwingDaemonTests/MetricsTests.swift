import Foundation
import LapwingJob
import LapwingTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The Prometheus endpoint (issue #14), scraped with a real HTTP client (Python's urllib), its
/// text checked line by line against the exposition format.
extension DaemonTests {
@Suite struct MetricsTests {
    static let checker = """
        import re, sys, urllib.request, urllib.error
        url = sys.argv[1]
        body = urllib.request.urlopen(url + "/metrics", timeout=30).read().decode()
        sample = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\\]|\\\\.)*",?)*\\})? [-+]?([0-9.eE+-]+|NaN|\\+Inf|-Inf)$')
        for line in body.splitlines():
            if line.startswith("# HELP ") or line.startswith("# TYPE "):
                continue
            if not sample.match(line):
                print("BAD LINE:", line); sys.exit(1)
        try:
            urllib.request.urlopen(url + "/other", timeout=30)
            print("NO 404"); sys.exit(1)
        except urllib.error.HTTPError as e:
            if e.code != 404: print("CODE", e.code); sys.exit(1)
        print(body)
        """

    @Test func theEndpointExportsJobsQueueAndRequestLatency() throws {
        let d = try DaemonHarness(tag: "metrics")
        defer { d.cleanUp() }
        let port = 20000 + Int(getpid()) % 20000
        try d.start(arguments: ["--user", "--socket-mode", "0666", "--metrics-address", "127.0.0.1:\(port)"])
        let id = try d.submit(["--model", "mlp:784-64-10", "--algorithm", "hogwild", "--workers", "2", "--epochs", "500", "--eval-every", "0"]).id
        #expect(try eventually(timeout: 60) {
            (try decode(JobRecord.self, d.cli(["status", id, "--json"]).stdout).progress?.samplesPerSecond ?? 0) > 0
        })
        let script = d.dir + "/scrape.py"
        try Self.checker.write(toFile: script, atomically: true, encoding: .utf8)
        let r = try runProgram("/usr/bin/env", ["python3", script, "http://127.0.0.1:\(port)"], timeout: 60)
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let text = r.stdout
        #expect(text.contains("# TYPE lapwing_job_samples_per_second gauge"), "\(text)")
        let rate = text.split(separator: "\n").first { $0.hasPrefix("lapwing_job_samples_per_second{") && $0.contains("job=\"\(id)\"") }
        #expect(rate.map { Double($0.split(separator: " ").last ?? "") ?? 0 } ?? 0 > 0, "\(rate ?? "no samples/s line")")
        #expect(rate?.contains("user=\"root\"") == true && rate?.contains("algorithm=\"hogwild\"") == true)
        #expect(text.contains("lapwing_jobs{state=\"running\"} 1"))
        #expect(text.contains("lapwing_queue_wait_seconds_count 1"))
        #expect(text.contains("lapwing_control_request_duration_seconds_bucket{verb=\"status\""))
        _ = try d.cli(["cancel", id])
        // The job's own series go with it.
        #expect(try eventually(timeout: 60) {
            let again = try runProgram("/usr/bin/env", ["python3", script, "http://127.0.0.1:\(port)"], timeout: 60).stdout
            return !again.contains("job=\"\(id)\"") && again.contains("lapwing_jobs{state=\"cancelled\"} 1")
        })
    }

    @Test func onlyLoopbackAddressesAreServed() throws {
        let d = try DaemonHarness(tag: "metrics-refused")
        defer { d.cleanUp() }
        #expect(throws: (any Error).self) {
            try d.start(arguments: ["--user", "--socket-mode", "0666", "--metrics-address", "0.0.0.0:9464"])
        }
        #expect(d.daemon?.stderr.contains("not a loopback address") == true, "\(d.daemon?.stderr ?? "")")
    }
}
}
