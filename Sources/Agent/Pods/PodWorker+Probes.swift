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

// Startup, liveness and readiness probes.
extension PodWorker {
    func probe(_ container: Container, now: Int64) async {
        guard var run = runs[container.name], run.isRunning, let id = run.id else { return }
        let startedBefore = run.started
        var kill: String?
        if var startup = run.startup, startup.result != .success {
            if startup.isDue(now: now, started: run.startedAt) {
                let outcome = await perform(container.startupProbe!, container: container, run: run, timeout: startup.timeout)
                // Cut short by a deletion or an eviction: not a verdict on the container.
                if Task.isCancelled { return }
                startup.record(success: outcome.success, message: outcome.message, at: now)
                if !outcome.success { await event("Unhealthy", "Startup probe failed: \(outcome.message ?? "")", warning: true, container: container) }
                if startup.result == .failure { kill = "Startup probe failed: \(outcome.message ?? "")" }
                run.startup = startup
            }
        } else {
            if var liveness = run.liveness, liveness.isDue(now: now, started: run.startedAt) {
                let outcome = await perform(container.livenessProbe!, container: container, run: run, timeout: liveness.timeout)
                // Cut short by a deletion or an eviction: not a verdict on the container.
                if Task.isCancelled { return }
                liveness.record(success: outcome.success, message: outcome.message, at: now)
                if !outcome.success { await event("Unhealthy", "Liveness probe failed: \(outcome.message ?? "")", warning: true, container: container) }
                if liveness.result == .failure { kill = "Liveness probe failed: \(outcome.message ?? "")" }
                run.liveness = liveness
            }
            if var readiness = run.readiness, readiness.isDue(now: now, started: run.startedAt) {
                let outcome = await perform(container.readinessProbe!, container: container, run: run, timeout: readiness.timeout)
                // Cut short by a deletion or an eviction: not a verdict on the container.
                if Task.isCancelled { return }
                if !outcome.success, run.started { await event("Unhealthy", "Readiness probe failed: \(outcome.message ?? "")", warning: true, container: container) }
                if readiness.record(success: outcome.success, message: outcome.message, at: now) {
                    logger.info("container \(container.name) readiness: \(outcome.success ? "ready" : "not ready (\(outcome.message ?? ""))")")
                }
                run.readiness = readiness
            }
        }
        runs[container.name] = run
        if let kill {
            logger.notice("container \(container.name): \(kill); restarting it")
            let which = kill.hasPrefix("Startup") ? "startup" : "liveness"
            await event("Killing", "Container \(container.name) failed \(which) probe, will be restarted", container: container)
            let probe = container.startupProbe != nil && !startedBefore ? container.startupProbe : container.livenessProbe
            let grace = probe?.terminationGracePeriodSeconds ?? gracePeriod
            if let hook = run.hook {
                _ = await ContainerStopper.stop(host.runtime, id: id, stopSignal: run.stopSignal, gracePeriodSeconds: grace,
                                                preStop: container.lifecycle?.preStop, context: hook)
            }
            observeExits(now: Self.now())
        }
    }

    func perform(_ probe: Probe, container: Container, run: ContainerRun, timeout: Int64) async -> (success: Bool, message: String?) {
        let address = hostNetwork ? "127.0.0.1" : podIPs.first ?? "127.0.0.1"
        let outcome: ProbeActions.Outcome
        if let exec = probe.exec, let id = run.id, let hook = run.hook {
            let runtime = host.runtime
            outcome = (try? await blocking {
                ProbeActions.exec(runtime, id: id, command: exec.command ?? [], env: hook.env, user: hook.user, timeoutSeconds: timeout)
            }) ?? .failure("exec probe could not run")
        } else if let http = probe.httpGet {
            do {
                let port = try ProbeActions.port(http.port, in: container)
                outcome = await ProbeActions.http(secure: http.scheme == .https, host: http.host ?? address, port: port, path: http.path ?? "/",
                                                  headers: http.httpHeaders ?? [], timeoutSeconds: timeout)
            } catch { outcome = .failure("\(error)") }
        } else if let tcp = probe.tcpSocket {
            do {
                let port = try ProbeActions.port(tcp.port, in: container)
                outcome = await ProbeActions.tcp(host: tcp.host ?? address, port: port, timeoutSeconds: timeout)
            } catch { outcome = .failure("\(error)") }
        } else if let grpc = probe.grpc {
            outcome = await GRPCHealthProbe.check(host: address, port: Int(grpc.port), service: grpc.service ?? "", timeoutSeconds: timeout)
        } else {
            outcome = .failure("the probe has no handler")
        }
        if case .failure(let message) = outcome { return (false, message) }
        return (true, nil)
    }
}
