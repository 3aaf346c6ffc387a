import Agent
import ArgumentParser
import HTTPServing
import ImageStore
import KubeClient
import KubeModel
import Logging
import PodNetwork
import Runtime
import ServiceLifecycle
import SystemSupport

/// `iotkube-agent run`: the daemon.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the node agent (as the systemd service does).")

    @Option(help: "The agent configuration written by `join`.")
    var config = "/etc/iotkube/agent.yaml"

    @Option(help: .hidden)
    var heartbeatInterval: Double = 10

    @Option(help: .hidden)
    var statusInterval: Double = 300

    @Option(help: .hidden)
    var renewCertificateAfter: Int64?

    @Option(help: .hidden)
    var staticPodInterval: Double = 20

    @Option(help: .hidden)
    var housekeepingInterval: Double = 10

    /// Seconds between looks at a pod whose containers all run (exits wake its worker at once).
    @Option(help: .hidden)
    var steadySyncInterval: Double = 10

    func run() async throws {
        let configuration: AgentConfiguration
        do { configuration = try AgentConfiguration.load(config) } catch {
            printToStandardError("iotkube-agent: \(error)")
            throw ExitCode.failure
        }
        guard heartbeatInterval > 0, statusInterval > 0 else { throw ValidationError("intervals must be positive") }
        // One agent per state directory: after a quick restart, wait for the one before to stop
        // (before reading the credentials it may still be renewing).
        let instanceLock: AgentInstanceLock
        let credentials: CertificateRotation
        do {
            instanceLock = try AgentInstanceLock.acquire(stateDirectory: configuration.stateDir, waitSeconds: 30) { holder in
                printToStandardError("iotkube-agent: another agent\(holder.map { " (pid \($0))" } ?? "") runs with \(configuration.stateDir): waiting up to 30 s for it to stop")
            }
            guard let kubeconfig = try AtomicFile.read(configuration.kubeconfig) else {
                throw ProvisioningError("\(configuration.kubeconfig) does not exist: join again with `iotkube-agent join --force`")
            }
            let directory = String(configuration.kubeconfig.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/"))
            credentials = try CertificateRotation(
                configuration: configuration, clientConfiguration: try Kubeconfig.parse(kubeconfig, directory: directory.isEmpty ? "." : directory),
                renewAfterSeconds: renewCertificateAfter)
        } catch {
            printToStandardError("iotkube-agent: \(error)")
            throw ExitCode.failure
        }
        // journald's native protocol under systemd (structured fields), else stderr.
        let useJournal = JournalLogHandler.journalAvailable
        LoggingSystem.bootstrap { label -> any LogHandler in
            useJournal ? JournalLogHandler(label: label, identifier: "iotkube-agent") : StreamLogHandler.standardError(label: label)
        }
        let logger = Logger(label: "iotkube-agent")
        let counters = HeartbeatCounters()
        let host = HostReader()
        let pressure = NodePressure()
        let nodeLabels = NodeLabels()
        let nodeShutdown = NodeShutdownState()
        let shutdownPlan: NodeShutdownPlan
        do { shutdownPlan = try configuration.shutdownPlan() } catch {
            printToStandardError("iotkube-agent: \(config): \(error)")
            throw ExitCode.failure
        }
        let evictionSettings: EvictionSettings
        do { evictionSettings = try configuration.evictionSettings() } catch {
            printToStandardError("iotkube-agent: \(config): \(error)")
            throw ExitCode.failure
        }
        let servingCertificate = try ServingCertificate(
            nodeName: configuration.nodeName, addresses: [host.internalIPv4()].compactMap { $0 }, stateDirectory: configuration.stateDir)
        let endpointTLS = try servingCertificate.tlsContext(
            clusterCAPEM: try Kubeconfig.parse(try AtomicFile.read(configuration.kubeconfig) ?? []).certificateAuthorityPEM ?? [])
        let servingCertificateService = ServingCertificateService(
            certificate: servingCertificate, client: { credentials.client }, logger: Logger(label: "iotkube-agent.endpoint"))
        let runtime: BuiltinRuntime
        do { runtime = try configuration.containerRuntime() } catch {
            printToStandardError("iotkube-agent: \(config): \(error)")
            throw ExitCode.failure
        }
        let devices = DeviceManager(classes: configuration.deviceClasses, checkpointPath: configuration.stateDir + "/devices/assignments.json")
        let heartbeat = HeartbeatService(
            credentials: credentials, configuration: configuration, host: host,
            interval: .milliseconds(Int64(heartbeatInterval * 1000)), statusInterval: .milliseconds(Int64(statusInterval * 1000)),
            logger: logger, counters: counters, pressure: pressure, labels: nodeLabels, podMetrics: PodMetricsSampler(runtime: runtime),
            devices: devices, shutdown: nodeShutdown)
        let imageStore: ImageStore
        do { imageStore = try ImageStore(stateDirectory: configuration.stateDir) } catch {
            printToStandardError("iotkube-agent: the image store in \(configuration.stateDir): \(error)")
            throw ExitCode.failure
        }
        let imageGC = ImageGarbageCollectionService(
            store: imageStore, highPercent: configuration.imageGCHighThresholdPercent ?? 85,
            lowPercent: configuration.imageGCLowThresholdPercent ?? 80, logger: Logger(label: "iotkube-agent.images"))
        // Archives on the board's storage are in the store before any pod asks for an image.
        let preload = configuration.effectiveImagePreloadDirectory.map { directory in
            ImagePreloadService(preloader: ImagePreloader(store: imageStore, directory: directory), logger: Logger(label: "iotkube-agent.images"))
        }
        await preload?.preloadOnce()
        let pods: PodWorkers
        let podSource: APIPodSource
        let staticPods: StaticPodSource
        let statusService: PodStatusService
        let eventService: PodEventService
        let eviction: EvictionService
        let shutdownService: NodeShutdownService
        let deviceMonitor: DeviceMonitorService
        var podCgroups: PodCgroups?
        let exitWatch: ContainerExitWatch?
        let devicePlugins = DevicePluginService(directory: configuration.devicePluginDirectory ?? DevicePluginService.defaultDirectory, devices: devices,
                                                logger: Logger(label: "iotkube-agent.device-plugins"))
        do {
            let client: @Sendable () -> KubeAPIClient? = { credentials.client }
            let podLogger = Logger(label: "iotkube-agent.pods")
            let reporter = PodStatusReporter(client: client, logger: podLogger)
            let recorder = PodEventRecorder(nodeName: configuration.nodeName)
            eventService = PodEventService(recorder: recorder, client: client)
            let capacity = host.memory().total
            var podHost = PodHost(
                configuration: configuration, runtime: runtime,
                images: imageStore, registry: try configuration.registryConfiguration(),
                network: PodNetworkProvider(configuration: configuration, client: client),
                dns: configuration.podDNS(hostResolvConf: FileTree.readText("/etc/resolv.conf") ?? ""),
                nodeHosts: FileTree.readText("/etc/hosts") ?? "127.0.0.1\tlocalhost\n", nodeHostname: HostReader.hostname(),
                hostIPs: [host.internalIPv4()].compactMap { $0 },
                nodeAllocatable: NodeStatusBuilder(configuration: configuration, host: host).status(previous: nil, now: .now()).allocatable ?? [:],
                nodeMemoryCapacity: capacity, logDirectory: configuration.podLogDirectory ?? "/var/log/pods",
                client: client, status: reporter, events: recorder, logger: podLogger)
            podHost.pressure = pressure
            podHost.shutdown = nodeShutdown
            podHost.nodeLabels = nodeLabels
            podHost.devices = devices
            exitWatch = ContainerExitWatch(logger: podLogger)
            podHost.exitWatch = exitWatch
            podHost.steadySyncInterval = .milliseconds(Int64(min(max(1, steadySyncInterval), 3600) * 1000))
            if configuration.cgroupsPerQOS ?? true {
                let cgroups = try configuration.podCgroups(manager: runtime.cgroups, cpuCount: host.cpuCount(), memoryBytes: capacity)
                podHost.cgroups = cgroups
                podCgroups = cgroups
                logger.info("pod cgroups: the \(cgroups.systemd == nil ? "cgroupfs" : "systemd") driver, below \(cgroups.root) (\(runtime.cgroups.summary))")
            }
            if configuration.enforcesPodAllocatable, !runtime.cgroups.controllerNames.contains("memory") {
                logger.warning("the memory cgroup controller is missing: pods' memory limits and node allocatable are not enforced (on Raspberry Pi OS add `cgroup_enable=memory cgroup_memory=1` to /boot/firmware/cmdline.txt and reboot)")
            }
            pods = PodWorkers(host: podHost, checkpointPath: configuration.stateDir + "/pods-checkpoint.json")
            podSource = APIPodSource(nodeName: configuration.nodeName, client: client, workers: pods, logger: podLogger)
            staticPods = StaticPodSource(directory: configuration.staticPodPath ?? "/etc/iotkube/manifests", nodeName: configuration.nodeName,
                                         client: client, workers: pods, status: reporter, logger: podLogger,
                                         interval: .milliseconds(Int64(max(0.1, staticPodInterval) * 1000)))
            statusService = PodStatusService(reporter: reporter)
            deviceMonitor = DeviceMonitorService(devices: devices, pods: pods, events: recorder, logger: Logger(label: "iotkube-agent.devices"))
            eviction = EvictionService(settings: evictionSettings, host: host, pods: pods, podHost: podHost, images: imageStore,
                                       interval: .milliseconds(Int64(max(0.1, housekeepingInterval) * 1000)), logger: Logger(label: "iotkube-agent.eviction"))
            shutdownService = NodeShutdownService(plan: shutdownPlan, pods: pods, host: podHost, logger: Logger(label: "iotkube-agent.shutdown"))
        } catch {
            printToStandardError("iotkube-agent: \(error)")
            throw ExitCode.failure
        }
        // Exec reaches the containers of the pod this node runs under that name now (a
        // terminating older pod of the same name keeps its own).
        let currentPodUID: @Sendable (String, String) -> String? = { [pods] namespace, name in
            pods.admittedPods().first { $0.pod.metadata.namespace == namespace && $0.pod.metadata.name == name }?.pod.metadata.uid
        }
        let endpoint = HTTPService(
            server: APIHTTPServer(handler: AgentEndpoint(nodeName: configuration.nodeName, host: host, counters: counters,
                                                             logs: ContainerLogReader(directory: configuration.podLogDirectory ?? "/var/log/pods"), runtime: runtime,
                                                             currentPodUID: currentPodUID, streamIdleTimeout: try configuration.streamIdleTimeout(),
                                                             cgroups: podCgroups), tls: endpointTLS, logger: Logger(label: "iotkube-agent.endpoint")),
            host: "0.0.0.0", port: Int(configuration.port))
        let serviceCatalog = ServiceCatalog()
        let tunnel = AgentTunnelService(client: { credentials.client }, endpointPort: Int(configuration.port), logger: Logger(label: "iotkube-agent.tunnel"))
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: endpoint)]
        if configuration.tunnel != false { services.append(.init(service: tunnel)) }
        services += [.init(service: servingCertificateService), .init(service: heartbeat), .init(service: imageGC), .init(service: MemoryTrimService())]
        if let preload { services.append(.init(service: preload)) }
        if let exitWatch { services.append(.init(service: exitWatch)) }
        services += [.init(service: pods), .init(service: podSource), .init(service: staticPods),
                     .init(service: statusService), .init(service: eventService), .init(service: eviction), .init(service: deviceMonitor),
                     .init(service: shutdownService)]
        if configuration.devicePluginDirectory != "" { services.append(.init(service: devicePlugins)) }
        if configuration.serviceProxy != false {
            // A node port never captures the agent's own endpoint or the API server's port.
            let serverPort = configuration.server.split(separator: ":").last.flatMap { Int32($0.prefix { $0.isNumber }) } ?? 443
            let reservedNodePorts: Set<Int32> = [Int32(clamping: configuration.port), serverPort]
            if let backend = ServiceProxyBackend.detect(mode: configuration.serviceProxyMode) {
                if case .iptables = backend, configuration.serviceProxyMode == nil { logger.notice("nft is not installed: the service proxy uses iptables-restore (apt-get install nftables for incremental updates)") }
                services.append(.init(service: ServiceProxyService(nodeName: configuration.nodeName, client: { credentials.client }, catalog: serviceCatalog,
                                                                   backend: backend, reservedNodePorts: reservedNodePorts, logger: Logger(label: "iotkube-agent.services"),
                                                                   checkpointPath: configuration.stateDir + "/services-checkpoint.json")))
            } else {
                logger.error("\(configuration.serviceProxyMode.map { "serviceProxyMode \($0): its tool is not installed" } ?? "neither nft nor iptables-restore is installed"): pods cannot reach services through their cluster addresses (apt-get install nftables, or set serviceProxy: false)")
            }
        }
        if configuration.runsClusterDNS {
            services.append(.init(service: ClusterDNSServer(
                address: ClusterDNSServer.defaultAddress, domain: configuration.clusterDomain ?? "cluster.local", catalog: serviceCatalog,
                upstreams: { PodDNS.nameservers(FileTree.readText("/etc/resolv.conf") ?? "") }, logger: Logger(label: "iotkube-agent.dns"))))
        }
        let group = ServiceGroup(configuration: .init(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        defer { withExtendedLifetime(instanceLock) {} }
        try await group.run()
    }
}
