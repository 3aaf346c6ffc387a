import KubeModel
import OCI

// The pod worker's side of the probes: starting a run's probe workers, reading their verdicts
// for the status, and restarting a container whose liveness or startup probe failed.
extension PodWorker {
    /// Starts the probe workers of a run that just started (or was adopted running).
    func startProbes(_ container: Container, _ run: ContainerRun) {
        guard let id = run.id else { return }
        let target = ProbeTarget(containerID: id, container: container, address: hostNetwork ? "127.0.0.1" : podIPs.first ?? "127.0.0.1",
                                 exec: run.hook, startedAt: run.startedAt)
        let runtime = host.runtime, events = host.events, pod = self.pod, wake = self.wake, logger = self.logger, clock = host.clock
        let fieldPath = self.fieldPath(of: container)
        let probes: [(ProbeTracker.Kind, Probe?)] = [(.startup, container.startupProbe), (.liveness, container.livenessProbe), (.readiness, container.readinessProbe)]
        let workers = probes.compactMap { kind, probe in
            probe.map { probe in
                ProbeWorker(
                    kind: kind, probe: probe, target: target, results: self.probes.results,
                    perform: { probe, target, timeout in await ProbeActions.perform(probe, on: target, runtime: runtime, timeoutSeconds: timeout) },
                    failed: { message in await events?.record(pod, type: "Warning", reason: "Unhealthy", message: message, fieldPath: fieldPath) },
                    changed: { wake.signal() }, logger: logger, now: clock.sinceBoot)
            }
        }
        if !workers.isEmpty { self.probes.start(workers) }
    }

    /// Running, and its startup probe has passed (or it has none): the status's `started`.
    func started(_ container: Container) -> Bool {
        guard let run = runs[container.name], run.isRunning, let id = run.id else { return false }
        return container.startupProbe == nil || probes.results.verdict(.startup, of: id)?.result == .success
    }

    /// Started, and its readiness probe passes (or it has none): the status's `ready`.
    func ready(_ container: Container) -> Bool {
        guard started(container), let id = runs[container.name]?.id else { return false }
        return container.readinessProbe == nil || probes.results.verdict(.readiness, of: id)?.result == .success
    }

    /// Restarts a running container whose startup or liveness probe failed (its stop signal and
    /// preStop hook, within the probe's grace period or the pod's).
    func restartIfProbesFailed(_ container: Container) async {
        // Only a pod still syncing restarts containers (a sync resumed after a deletion does not).
        guard state == .syncing, let run = runs[container.name], run.isRunning, let id = run.id else { return }
        let startup = probes.results.verdict(.startup, of: id), liveness = probes.results.verdict(.liveness, of: id)
        let failed: (which: String, probe: Probe?, message: String?)
        if startup?.result == .failure {
            failed = ("startup", container.startupProbe, startup?.message)
        } else if liveness?.result == .failure {
            failed = ("liveness", container.livenessProbe, liveness?.message)
        } else {
            return
        }
        let title = failed.which == "startup" ? "Startup" : "Liveness"
        logger.notice("container \(container.name): \(title) probe failed: \(failed.message ?? ""); restarting it")
        await event("Killing", "Container \(container.name) failed \(failed.which) probe, will be restarted", container: container)
        probes.stop(containerID: id)
        let grace = failed.probe?.terminationGracePeriodSeconds ?? gracePeriod
        // A run adopted without its spec: stopped by signal alone.
        let context = run.hook ?? ContainerStopper.HookContext(env: [], user: RuntimeSpec.User(uid: 0, gid: 0), podIP: nil, container: container)
        _ = await ContainerStopper.stop(host.runtime, id: id, stopSignal: run.stopSignal, gracePeriodSeconds: grace,
                                        preStop: run.hook == nil ? nil : container.lifecycle?.preStop, context: context)
        observeExits(now: self.now())
    }
}
