import CLapwing
import Foundation
import LapwingCore
import LapwingEngine
import LapwingJob
import LapwingProtocol
import LapwingTopology

#if canImport(Glibc)
import Glibc
#endif

/// What the control server answers: the handshake, each verb, and the cache of records' JSON.
extension ControlServer {
    // MARK: Messages

    func handle(_ c: Connection, _ frame: ReceivedFrame) {
        if !c.greeted {
            let (reply, accepted) = Handshake.answer(frame, peerUID: c.uid)
            send(c, reply)
            c.greeted = accepted
            if !accepted { closeWhenFlushed(c) }
            return
        }
        do throws(ProtocolError) {
            guard case .request(let request) = try ClientMessage.decode(frame.json) else {
                frame.fds.forEach { $0.close() }
                throw ProtocolError(.badFrame, "a second hello")
            }
            let began = ContinuousClock.now
            defer {
                let took = ContinuousClock.now - began
                manager.metrics.recordRequest(
                    request.verb.rawValue, seconds: Double(took.components.seconds) + Double(took.components.attoseconds) * 1e-18)
            }
            do throws(ProtocolError) {
                try dispatch(c, request, Call.decode(request, fds: frame.fds))
            } catch {
                var e = error
                e.requestID = e.requestID ?? request.id
                throw e
            }
        } catch {
            if let id = error.requestID {
                send(c, .response(Response(id: id, error: error)))
            } else {
                send(c, .error(error))
            }
        }
    }

    func dispatch(_ c: Connection, _ request: Request, _ call: Call) throws(ProtocolError) {
        func lapwing<T>(_ body: () throws(LapwingError) -> T) throws(ProtocolError) -> T {
            do throws(LapwingError) { return try body() } catch { throw ProtocolError(error, requestID: request.id) }
        }
        let id = request.id
        switch call {
        case .version:
            respond(c, id: id, result: VersionResult(
                server: "lapwingd \(ControlProtocol.softwareVersion)", protocolVersion: ControlProtocol.version,
                mode: config.mode.rawValue))
        case .list(let args):
            let records = manager.list()
            var end = records.count
            if let before = args.before {
                guard let i = records.firstIndex(where: { $0.id == before }) else {
                    throw ProtocolError(.noSuchJob, "job \(before): no such job", detail: "the \"before\" of a list", requestID: id)
                }
                end = i
            }
            let page = try ListArgs.page(before: end, limit: args.limit) { k throws(ProtocolError) in
                try encoded(records[k], requestID: id)
            }
            respond(c, id: id, resultJSON: page)
            if encodedRecords.count > records.count {
                let live = Set(records.map(\.id))
                encodedRecords = encodedRecords.filter { live.contains($0.key) }
            }
        case .status(let ref):
            let record = try lapwing { () throws(LapwingError) in try manager.status(ref.job) }
            respond(c, id: id, resultJSON: try encoded(record, requestID: id))
        case .pause(let ref):
            respond(c, id: id, result: try lapwing { () throws(LapwingError) in try manager.pause(ref.job, by: c.uid) })
        case .resume(let args, let fds):
            if fds.isEmpty {
                respond(c, id: id, result: try lapwing { () throws(LapwingError) in try manager.resume(args.job, by: c.uid) })
            } else {
                let files = zip(args.files, fds).map { (role: $0.role, name: $0.name, fd: $1.release()) }
                do throws(LapwingError) {
                    respond(c, id: id, result: try manager.resumeFromCheckpoint(args.job, by: c.uid, files: files))
                } catch {
                    for f in files { close(f.fd) }
                    throw ProtocolError(error, requestID: id)
                }
            }
        case .cancel(let ref):
            respond(c, id: id, result: try lapwing { () throws(LapwingError) in try manager.cancel(ref.job, by: c.uid) })
        case .checkpoint(let ref):
            respond(c, id: id, result: try lapwing { () throws(LapwingError) in try manager.checkpoint(ref.job, by: c.uid) })
        case .remove(let ref):
            respond(c, id: id, result: try lapwing { () throws(LapwingError) in try manager.remove(ref.job, by: c.uid) })
        case .submit(let args, let fds):
            let spec: JobSpec
            do throws(ProtocolError) {
                spec = try SubmitCheck.spec(args.spec, requestID: id)
            } catch {
                fds.forEach { $0.close() }
                throw error
            }
            var chosen = spec
            // Workers 0: the daemon's default, one per core it may use (at least one per replica).
            if chosen.workers == 0 { chosen.workers = max(1, config.cores, spec.replicas ?? 1) }
            let files = zip(args.files, fds).map { (role: $0.role, name: $0.name, fd: $1.release()) }
            do throws(LapwingError) {
                respond(c, id: id, result: try manager.submit(spec: chosen, owner: c.uid, files: files, priority: args.priority))
            } catch {
                for f in files { close(f.fd) }
                throw ProtocolError(error, requestID: id)
            }
        case .watch(let ref):
            let jobs = self.manager
            let record = try lapwing { () throws(LapwingError) in try jobs.status(ref.job) }
            if record.state.isFinished { return respond(c, id: id, result: record) }
            let connID = c.id
            let token = try lapwing { () throws(LapwingError) in
                try jobs.watch(ref.job) { [weak self] event, final in
                    guard let self else { return }
                    let message: ServerMessage?
                    if final {
                        message = (try? jobs.status(ref.job)).flatMap { r in
                            (try? JSONValue(encoding: r)).map { .response(Response(id: id, result: $0)) }
                        }
                    } else {
                        message = (try? JSONValue(encoding: event)).map { .event(Event(id: id, event: $0)) }
                    }
                    guard let frame = try? message?.frame() else { return }
                    self.inbox.withLock { $0[connID, default: []].append(frame) }
                    self.poke()
                }
            }
            // It may have ended between the status check and the subscription.
            if let now = try? manager.status(ref.job), now.state.isFinished {
                manager.unwatch(ref.job, token)
                return respond(c, id: id, result: now)
            }
            c.watching.append((ref.job, token, id))
        case .export(let args):
            let path = try lapwing { () throws(LapwingError) in
                switch args.what {
                case .model: try manager.modelPath(args.job, by: c.uid)
                case .metrics: try manager.metricsPath(args.job, by: c.uid)
                }
            }
            try sendFile(c, id: id, job: args.job, path: path, what: args.what.rawValue)
        case .logs(let ref):
            let path = try lapwing { () throws(LapwingError) in try manager.logPath(ref.job, by: c.uid) }
            try sendFile(c, id: id, job: ref.job, path: path, what: "log")
        case .topology:
            let report = try lapwing { () throws(LapwingError) -> TopologyReport in
                let t = try Topology.current()
                return TopologyReport(topology: t, placement: try t.place(workers: max(1, t.cores.count)))
            }
            respond(c, id: id, result: report)
        }
    }

    /// Answers with one of the daemon's own files attached as a descriptor (the client copies it).
    func sendFile(_ c: Connection, id: Int, job: String, path: String, what: String) throws(ProtocolError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw ProtocolError(LapwingError.system("open", errno: errno, object: "job \(job) \(what)"), requestID: id)
        }
        var st = stat()
        fstat(fd, &st)
        respond(c, id: id, result: ExportResult(job: job, bytes: Int(st.st_size)), fds: [OwnedFD(fd)])
    }

    /// `record` as JSON, from the cache while the record is unchanged.
    func encoded(_ record: JobRecord, requestID: Int) throws(ProtocolError) -> [UInt8] {
        if let hit = encodedRecords[record.id], hit.record == record { return hit.json }
        do throws(ProtocolError) {
            let json = try Frame.json(encoding: record)
            encodedRecords[record.id] = (record, json)
            return json
        } catch {
            var e = error
            e.requestID = requestID
            throw e
        }
    }
}
