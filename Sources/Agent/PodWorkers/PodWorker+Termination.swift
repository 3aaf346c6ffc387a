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

// Stopping a pod and releasing what it held.
extension PodWorker {
    /// Stops every running container: app containers first (each with its preStop hook), then
    /// sidecars, within the grace period.
    func stopAll(gracePeriod: Int64) async {
        let runtime = host.runtime
        for container in allContainers where runs[container.name]?.isRunning == true {
            await event("Killing", "Stopping container \(container.name)", container: container)
        }
        let deadline = self.now() + SpecSeconds.bounded(gracePeriod)
        let groups = [pod.spec?.containers ?? [], (pod.spec?.initContainers ?? []).reversed()]
        for containers in groups {
            let targets = containers.compactMap { container -> (Container, ContainerRun)? in
                guard let run = runs[container.name], run.isRunning, run.id != nil, run.hook != nil else { return nil }
                return (container, run)
            }
            let left = max(0, deadline - self.now())
            await withTaskGroup(of: Void.self) { group in
                for (container, run) in targets {
                    group.addTask {
                        _ = await ContainerStopper.stop(runtime, id: run.id!, stopSignal: run.stopSignal, gracePeriodSeconds: left,
                                                        preStop: container.lifecycle?.preStop, context: run.hook!)
                    }
                }
            }
        }
        // Runs adopted without a hook context: stop them by signal alone.
        for container in allContainers {
            guard let run = runs[container.name], run.isRunning, let id = run.id, run.hook == nil else { continue }
            let context = ContainerStopper.HookContext(env: [], user: RuntimeSpec.User(uid: 0, gid: 0), podIP: nil, container: container)
            _ = await ContainerStopper.stop(runtime, id: id, stopSignal: run.stopSignal, gracePeriodSeconds: max(0, deadline - self.now()), preStop: nil, context: context)
        }
        observeExits(now: self.now())
    }

    func releaseNetwork() async {
        var known = await host.network.cached()
        if known == nil { known = try? await host.network.network() }
        if networkReady, let attachments = known {
            let uid = self.uid
            do {
                try await blockingToTheEnd { try attachments.delete(sandboxID: uid) }
                networkReady = false
            } catch {
                logger.warning("releasing the pod network: \(error)")
            }
        }
        if let sandbox {
            do {
                try await blockingToTheEnd { try sandbox.remove() }
                self.sandbox = nil
            } catch {
                logger.warning("removing the pod sandbox: \(error)")
            }
        }
        podIPs = hostNetwork ? podIPs : []
    }

    /// The pod is deleted (or unwanted): containers stopped within the grace period, their
    /// runs, network, sandbox, volumes and files removed, the final status written and the
    /// API object deleted when the API asked for the deletion.
    func terminate(gracePeriod: Int64, deleteFromAPI: Bool) async {
        logger.info("stopping pod (grace period \(gracePeriod)s)")
        await stopAll(gracePeriod: gracePeriod)
        await report()
        // Every run the runtime has of this pod, and every run root on disk (the runtime's own
        // state may be gone after a reboot while a root is still mounted).
        let runtime = host.runtime, uid = self.uid, directory = self.directory
        let runs = (try? await blockingToTheEnd {
            runtime.list().filter { $0.annotations?["io.kubernetes.pod.uid"] == uid }.map(\.id) + FileTree.list(directory + "/runs")
        }) ?? []
        for id in Set(runs).sorted() { await removeRun(id) }
        if let cgroups = host.cgroups {
            _ = try? await blockingToTheEnd { cgroups.remove(uid: uid) }
            podCgroup = nil
        }
        let attached = await host.network.cached()?.attachment(sandboxID: uid) != nil
        networkReady = networkReady || attached
        await releaseNetwork()
        let volumes = self.volumes, logFolder = host.logDirectory + "/" + PodHost.logFolder(pod)
        do {
            try await blockingToTheEnd {
                try volumes.tearDown()
                try FileTree.remove(directory)
            }
        } catch {
            logger.warning("removing the pod's files: \(error)")
        }
        // The pod's logs go with it (the kubelet's behaviour; `logs` of a deleted pod has nothing to read).
        _ = try? await blockingToTheEnd { try FileTree.remove(logFolder) }
        // A deletion that arrived while the pod was being stopped (it began as a removal) still
        // deletes the object.
        var deleting = deleteFromAPI
        if case .terminating(_, let asked, _) = state { deleting = deleting || asked }
        await host.status.finish(uid: uid, deleteFromAPI: deleting)
        logger.info("pod stopped and removed")
    }
}
