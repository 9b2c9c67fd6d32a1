import Foundation
import LapwingCore
import LapwingDaemon
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// The daemon as a ServiceGroup. Services, in start order: supervisor, scheduler, listener,
/// notifier. On SIGTERM or SIGINT the group shuts them down in reverse order: the notifier sends
/// STOPPING=1 at once, the listener stops taking requests, the scheduler stops starting jobs, and
/// the supervisor interrupts the running jobs (each host stops its workers, writes its model and
/// summary, removes its arena) and waits for them.
final class Daemon: Sendable {
    let config: DaemonConfig
    let manager: JobManager
    let logger: Logger
    let server: ControlServer

    init(config: DaemonConfig, manager: JobManager, server: ControlServer, logger: Logger) {
        self.config = config
        self.manager = manager
        self.logger = logger
        self.server = server
    }

    func run() async throws {
        // SIGHUP's default action would end the daemon and leave its job hosts unsupervised:
        // ignored from the start, then logged by HangupService.
        signal(SIGHUP, SIG_IGN)
        let ready = ReadySignal()
        let services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: SupervisorService(manager: manager, logger: logger), serviceName: "supervisor"),
            .init(service: SchedulerService(manager: manager), serviceName: "scheduler"),
            .init(service: ListenerService(server: server, ready: ready), serviceName: "listener"),
            .init(
                service: NotifierService(manager: manager, ready: ready, logger: logger),
                successTerminationBehavior: .ignore, serviceName: "notifier"),
            .init(service: HangupService(manager: manager, logger: logger), successTerminationBehavior: .ignore, serviceName: "hangup"),
        ]
        var groupConfig = ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfig.maximumGracefulShutdownDuration = .seconds(60)
        let group = ServiceGroup(configuration: groupConfig)
        logger.info("lapwingd \(LapwingVersion.string) (\(config.mode.rawValue) mode): state in \(config.stateDirectory)")
        try await group.run()
        logger.info("lapwingd stopped")
    }
}

/// Set once the control socket listens (READY=1 waits for it).
final class ReadySignal: Sendable {
    private let state = Mutex<(ready: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func set() {
        let waiters = state.withLock { s in
            s.ready = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }

    func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s in
                if s.ready { return true }
                s.waiters.append(c)
                return false
            }
            if now { c.resume() }
        }
    }
}

/// Serves the control socket on a thread of its own (a poll loop over every connection).
struct ListenerService: Service {
    let server: ControlServer
    let ready: ReadySignal

    func run() async throws {
        let server = self.server
        let ready = self.ready
        let thread = Thread {
            server.serve(onListening: { ready.set() })
        }
        thread.name = "control-socket"
        thread.start()
        await ready.wait()
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully && server.isServing {
                try? await Task.sleep(for: .milliseconds(100))
            }
        } onGracefulShutdown: {
            server.stop()
        }
        server.stop()
        while server.isServing { try? await Task.sleep(for: .milliseconds(10)) }
    }
}

/// Starts queued jobs as cores free up (the supervisor also schedules when a job ends).
struct SchedulerService: Service {
    let manager: JobManager

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            manager.retryUnsaved()
            manager.measureOtherLoad()
            manager.schedule()
            try? await Task.sleep(for: .seconds(1))
        }
    }
}

/// Keeps the running jobs; on shutdown interrupts them and waits for their hosts to finish.
struct SupervisorService: Service {
    let manager: JobManager
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        let (running, _) = manager.counts
        logger.info("shutting down: interrupting \(running) running job(s)")
        let manager = self.manager
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let t = Thread {
                manager.shutdown(timeout: 30)
                c.resume()
            }
            t.start()
        }
    }
}

/// systemd's notify protocol: READY=1 once the socket listens, STATUS= with job counts,
/// WATCHDOG=1 at half the watchdog interval, STOPPING=1 as soon as shutdown begins.
struct NotifierService: Service {
    let manager: JobManager
    let ready: ReadySignal
    let logger: Logger

    func run() async throws {
        guard let notifier = SystemdNotifier.fromEnvironment() else {
            try? await gracefulShutdown()
            return
        }
        let manager = self.manager
        let logger = self.logger
        func status() -> String {
            let (running, queued) = manager.counts
            return "\(running) running, \(queued) queued"
        }
        await ready.wait()
        do { try notifier.ready(status: status()) } catch { logger.warning("sd_notify READY: \(error)") }
        let interval = SystemdNotifier.watchdogInterval().map { $0 / 2 } ?? .seconds(5)
        await withGracefulShutdownHandler {
            var lastStatus = ""
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                let s = status()
                if s != lastStatus {
                    try? notifier.status(s)
                    lastStatus = s
                }
                if SystemdNotifier.watchdogInterval() != nil { try? notifier.watchdog() }
                try? await Task.sleep(for: min(interval, .seconds(1)))
            }
        } onGracefulShutdown: {
            try? notifier.stopping()
        }
    }
}

/// SIGHUP (`systemctl reload lapwingd`): reads the configuration file again. A file that does
/// not read leaves the previous configuration in force, with the reason in the log.
struct HangupService: Service {
    let manager: JobManager
    let logger: Logger

    func run() async throws {
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        for await _ in hangups.cancelOnGracefulShutdown() {
            do throws(LapwingError) {
                try manager.reloadSettings()
            } catch {
                logger.error("configuration not reloaded, the previous one stays: \(error)")
            }
        }
    }
}
