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

// The pod-level setup: sandbox, network, pod files, volumes and the objects they read.
extension PodWorker {
    /// Sandbox, network, pod files and volumes; false (with the reason in the status) when one
    /// of them cannot be made yet.
    func setUpPod(now: Int64) async -> Bool {
        let refreshDue = now - lastVolumeRefresh >= 60
        if setupProblem == nil, volumePaths != nil, (networkReady || hostNetwork), !refreshDue { return true }
        if setupProblem != nil, setupBackoff.isBackingOff(at: now) { return false }
        do {
            try await setUp(now: now)
            setupProblem = nil
            setupBackoff = RestartBackoff()
            return true
        } catch let problem as PodSetupProblem {
            if setupProblem?.message != problem.message { logger.warning("pod setup: \(problem.message)") }
            let reason = problem.message.hasPrefix("MountVolume") ? "FailedMount" : "FailedCreatePodSandBox"
            await event(reason, problem.message, warning: true)
            setupProblem = (problem.reason, problem.message)
            setupBackoff.recordExit(started: now, exited: now)
            // Volumes being refreshed keep the last good contents.
            return volumePaths != nil && (networkReady || hostNetwork)
        } catch {
            setupProblem = ("ContainerCreating", "\(error)")
            setupBackoff.recordExit(started: now, exited: now)
            return false
        }
    }

    struct PodSetupProblem: Error {
        var reason: String
        var message: String
    }

    func setUp(now: Int64) async throws {
        await fetchReferences()
        try FileTree.makeDirectories(directory, mode: 0o750)
        if podCgroup == nil, let cgroups = host.cgroups {
            let pod = self.pod
            do { podCgroup = try await blocking { try cgroups.prepare(pod) } } catch {
                throw PodSetupProblem(reason: "ContainerCreating", message: "Failed to create the pod cgroup: \(error)")
            }
        }
        if !hostNetwork, sandbox == nil {
            let directory = self.directory, hostname = PodDNS.hostname(for: pod)
            do {
                sandbox = try await blocking {
                    // Files of a sandbox that did not survive a reboot: the namespaces are gone.
                    if FileTree.exists(directory + "/sandbox") {
                        try? PodSandbox(directory: directory + "/sandbox").remove()
                        try FileTree.remove(directory + "/sandbox")
                    }
                    return try PodSandbox.create(directory: directory + "/sandbox", hostname: hostname)
                }
            } catch { throw PodSetupProblem(reason: "ContainerCreating", message: "Failed to create pod sandbox: \(error)") }
            networkReady = false
        }
        if !hostNetwork, !networkReady, let sandbox {
            let attachments: PodNetworkAttachments
            do { attachments = try await host.network.network() } catch {
                throw PodSetupProblem(reason: "ContainerCreating", message: "network is not ready: \(error)")
            }
            let mappings = (pod.spec?.containers ?? []).flatMap { $0.ports ?? [] }.compactMap { port -> PortMapping? in
                guard let hostPort = port.hostPort, hostPort > 0 else { return nil }
                return PortMapping(hostPort: Int(hostPort), containerPort: Int(port.containerPort), protocol: port.protocol?.rawValue ?? "TCP", hostIP: port.hostIP ?? "")
            }
            let target = PodNetworkAttachments.Pod(sandboxID: uid, namespace: pod.metadata.namespace ?? "default", name: pod.metadata.name ?? "",
                                                   uid: uid, networkNamespace: sandbox.networkNamespace, portMappings: mappings)
            do {
                let attachment = try await blocking {
                    // An attachment of the pod's previous sandbox (before a reboot) is released first.
                    if attachments.attachment(sandboxID: target.sandboxID) != nil { try? attachments.delete(sandboxID: target.sandboxID) }
                    return try attachments.add(target)
                }
                podIPs = attachment.ips
                networkReady = true
                logger.info("pod network ready: \(attachment.ips.joined(separator: ","))")
            } catch {
                throw PodSetupProblem(reason: "ContainerCreating", message: "failed to set up the pod network: \(error)")
            }
        }
        if hostNetwork { podIPs = host.hostIPs }
        do {
            _ = try files.write(for: pod, dns: host.dns, podIPs: podIPs, nodeHosts: host.nodeHosts, nodeHostname: host.nodeHostname)
        } catch { throw PodSetupProblem(reason: "ContainerCreating", message: "\(error)") }
        let configMaps = self.configMaps, secrets = self.secrets
        let sources = VolumePayload.Sources(configMap: { configMaps[$0] }, secret: { secrets[$0] })
        let memoryLimit = (pod.spec?.containers ?? []).compactMap { $0.resources?.limits?["memory"]?.byteCount }.saturatingSum()
        do {
            volumePaths = try volumes.prepare(pod, sources: sources, memoryLimit: memoryLimit > 0 ? memoryLimit : host.nodeMemoryCapacity / 2,
                                              allowedHostPaths: host.configuration.allowedHostPaths)
            lastVolumeRefresh = now
        } catch {
            throw PodSetupProblem(reason: "ContainerCreating", message: "MountVolume.SetUp failed: \(error)")
        }
    }

    /// The ConfigMaps and Secrets the pod uses, from the API (kept when it cannot be reached).
    func fetchReferences() async {
        guard let client = host.client() else { return }
        let references = PodReferences(pod)
        let namespace = pod.metadata.namespace ?? "default"
        for name in references.configMaps.sorted() {
            do { configMaps[name] = try await client.get(ConfigMap.self, namespace: namespace, name: name) } catch {
                if error.statusCode == 404 { configMaps[name] = nil }
            }
        }
        for name in references.secrets.sorted() {
            do { secrets[name] = try await client.get(Secret.self, namespace: namespace, name: name) } catch {
                if error.statusCode == 404 { secrets[name] = nil }
            }
        }
    }
}
