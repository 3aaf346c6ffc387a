#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import ImageStore
import KubeClient
import KubeModel
import Logging
import NIOPosix
import OCI
import PodNetwork
import Runtime
import SystemSupport

// Taking over what an earlier agent left running.
extension PodWorker {
    /// After an agent restart: the pod's sandbox and network, and the newest run of each
    /// container (running or finished) as they are, restart counts kept.
    func adopt() async {
        let candidate = PodSandbox(directory: directory + "/sandbox")
        if !hostNetwork, candidate.exists {
            sandbox = candidate
            if let network = try? await host.network.network(), let attachment = network.attachment(sandboxID: uid) {
                podIPs = attachment.ips
                networkReady = true
            }
        }
        let runtime = host.runtime
        let mine = runtime.list().filter { $0.annotations?["io.kubernetes.pod.uid"] == uid }
        var newest: [String: (OCIState, Int32)] = [:]
        for state in mine {
            guard let name = state.annotations?["io.kubernetes.container.name"],
                  let count = state.annotations?[Self.restartCountAnnotation].flatMap({ Int32($0) }) else { continue }
            if let existing = newest[name], existing.1 >= count {
                try? runtime.delete(id: state.id, force: true)
                continue
            }
            if let existing = newest[name] { try? runtime.delete(id: existing.0.id, force: true) }
            newest[name] = (state, count)
        }
        for container in allContainers {
            guard let (state, count) = newest[container.name] else { continue }
            var run = ContainerRun()
            run.id = state.id
            run.restartCount = count
            run.hasRun = true
            run.imageID = state.annotations?[Self.imageIDAnnotation] ?? ""
            let record = try? runtime.record(id: state.id)
            let started = record?.startedAt ?? record?.createdAt ?? 0
            // On the boot clock: the init's start in /proc, else the record's wall time.
            if let ticks = record?.processStartTicks, ticks > 0 {
                run.startedAt = PodClock.sinceBoot(ofStartTicks: ticks)
            } else {
                run.startedAt = host.clock.sinceBoot(ofWall: Self.timestamp(nanoseconds: started))
            }
            if let spec = try? runtime.spec(bundle: state.bundle), let process = spec.process {
                run.hook = ContainerStopper.HookContext(env: process.env ?? [], user: process.user, podIP: podIPs.first, container: container)
            }
            run.stopSignal = state.annotations?[Self.stopSignalAnnotation]
            if state.status == .running || state.status == .created {
                run.state = .running(startedAt: Self.timestamp(nanoseconds: started))
                startProbes(container, run)
            } else {
                run.state = finished(run, container: container, id: state.id)
            }
            runs[container.name] = run
            logger.info("adopted container \(container.name) (\(state.id), \(state.status.rawValue), restarts \(count))")
        }
        if !mine.isEmpty, startTime == nil { startTime = host.clock.wall(); activeSince = now() }
    }

    static let restartCountAnnotation = "io.iotkube.container.restartCount"
    static let imageIDAnnotation = "io.iotkube.container.imageID"
    static let stopSignalAnnotation = "io.iotkube.container.stopSignal"
}
