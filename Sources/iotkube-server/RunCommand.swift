#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import ArgumentParser
import ControlPlane
import Logging
import ServiceLifecycle
import SystemSupport
import HTTPServing
import KubeModel

/// `iotkube-server run`: serves the Kubernetes API over HTTPS.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Serve the Kubernetes API over HTTPS.")

    @Option(help: "The data directory made by `init`.")
    var dataDir: String

    @Option(help: "The address and port to listen on (HOST:PORT). Default: all addresses, the port chosen at init.")
    var listen: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Flag(inversion: .prefixedNo, help: "Approve node client certificate requests from bootstrap tokens automatically.")
    var autoApproveNodes = true

    @Option(help: "Seconds a client has to send a complete request (slow clients are disconnected).")
    var requestTimeout: Int64 = 30

    @Option(help: "Seconds without a lease renewal after which a node is marked unreachable.")
    var nodeMonitorGracePeriod: Int64 = 40

    @Option(help: "Delete the pods of a node unreachable for this many more seconds (default: never; edge boards keep their pods).")
    var evictUnreachableAfter: Int64?

    @Option(help: "Ended (Succeeded or Failed) pods kept before the oldest are deleted (kube-controller-manager's --terminated-pod-gc-threshold).")
    var terminatedPodGCThreshold = 12_500

    @Option(help: "Seconds an event is kept (kube-apiserver's --event-ttl).")
    var eventTTL: Int64 = 3600

    @Option(help: "The pod range each node's podCIDR is taken from (empty: no allocation; nodes bring their own).")
    var clusterCIDR = "10.42.0.0/16"

    @Option(help: "The range services' cluster addresses are taken from (its first address is the kubernetes service's).")
    var serviceClusterIPRange = "10.43.0.0/16"

    @Option(help: "The range node ports are taken from, as FIRST-LAST.")
    var serviceNodePortRange = "30000-32767"

    @Option(help: "The prefix length of each node's pod range.")
    var nodeCIDRMaskSize = 24

    @Option(help: "Seconds between passes that delete finished and abandoned certificate signing requests.")
    var csrCleanupInterval: Int64 = 3600

    @Option(help: "Open connections allowed from one client address (more get 429 TooManyRequests).")
    var maxConnectionsPerAddress = 512

    @Option(help: "Concurrent watches allowed for one client (more get 429 TooManyRequests).")
    var maxWatchesPerClient = 100

    @Option(help: "Bytes of recent changes kept for watches to resume from (older resource versions get 410 Gone).")
    var watchCacheBytes = 64 << 20

    @Option(help: "Seconds Lease renewals and Node heartbeats are kept in memory before they are written (0: written at once). A crash loses at most this much of them; the agents send them again.")
    var reconstructibleWriteInterval: Int64 = 600

    func validate() throws {
        guard (1...86_400).contains(requestTimeout) else { throw ValidationError("--request-timeout must be between 1 and 86400 seconds") }
        guard (1...31_536_000).contains(nodeMonitorGracePeriod) else { throw ValidationError("--node-monitor-grace-period must be between 1 and 31536000 seconds") }
        guard (0...31_536_000).contains(evictUnreachableAfter ?? 0) else { throw ValidationError("--evict-unreachable-after must be between 0 and 31536000 seconds") }
        guard (1...31_536_000).contains(eventTTL) else { throw ValidationError("--event-ttl must be between 1 and 31536000 seconds") }
        guard (1...10_000_000).contains(terminatedPodGCThreshold) else { throw ValidationError("--terminated-pod-gc-threshold must be between 1 and 10000000") }
        guard (1...86_400).contains(csrCleanupInterval) else { throw ValidationError("--csr-cleanup-interval must be between 1 and 86400 seconds") }
        guard (1...1_000_000).contains(maxConnectionsPerAddress) else { throw ValidationError("--max-connections-per-address must be between 1 and 1000000") }
        guard (1...1_000_000).contains(maxWatchesPerClient) else { throw ValidationError("--max-watches-per-client must be between 1 and 1000000") }
        guard (1 << 20...1 << 34).contains(watchCacheBytes) else { throw ValidationError("--watch-cache-bytes must be between 1 MiB and 16 GiB") }
        _ = try serviceAddressing()
        if !clusterCIDR.isEmpty {
            let network: IPv4Network
            do { network = try IPv4Network(clusterCIDR, prefixes: 8...30) } catch { throw ValidationError("--cluster-cidr: \(error)") }
            guard (network.prefixLength...30).contains(nodeCIDRMaskSize) else {
                throw ValidationError("--node-cidr-mask-size \(nodeCIDRMaskSize) must be between the cluster CIDR's prefix (\(network.prefixLength)) and 30")
            }
        }
    }

    /// The service ranges from the options; a /12 to /29 of IPv4 and ports within 1-65535.
    func serviceAddressing() throws -> ServiceAddressing {
        let network: IPv4Network
        do { network = try IPv4Network(serviceClusterIPRange, prefixes: 12...29) } catch { throw ValidationError("--service-cluster-ip-range: \(error)") }
        let bounds = serviceNodePortRange.split(separator: "-", omittingEmptySubsequences: false)
        guard bounds.count == 2, let first = Int32(bounds[0]), let last = Int32(bounds[1]), 1 <= first, first <= last, last <= 65535 else {
            throw ValidationError("--service-node-port-range must be FIRST-LAST within 1-65535, like 30000-32767; got \"\(serviceNodePortRange.prefix(64))\"")
        }
        if let pods = try? IPv4Network(clusterCIDR, prefixes: 8...30), pods.overlaps(network) {
            throw ValidationError("--service-cluster-ip-range \(network) overlaps --cluster-cidr \(pods)")
        }
        return ServiceAddressing(network: network, nodePorts: first...last)
    }

    func run() async throws {
        let files = ClusterFiles(directory: dataDir)
        FileLimits.raiseOpenFileLimit()
        guard files.isInitialized else {
            throw ValidationError("\(dataDir) is not initialised: run `iotkube-server init --data-dir \(dataDir)` first")
        }
        let settings = try files.settings()
        let (host, port) = try listenAddress(defaultPort: settings.port)
        var logger = Logger(label: "iotkube-server")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        guard (0...86_400).contains(reconstructibleWriteInterval) else {
            throw ValidationError("--reconstructible-write-interval must be 0 to 86400 seconds, got \(reconstructibleWriteInterval)")
        }
        let store = try ObjectStore(path: files.storePath, feedByteLimit: watchCacheBytes,
                                    defersReconstructibleChanges: reconstructibleWriteInterval > 0)
        // No node gets a serving certificate for the API's own names or its service address.
        var serverNames = try files.serverCertificateNames()
        let apiServiceAddress = try serviceAddressing().apiServiceAddress
        let apiServiceBytes = apiServiceAddress.split(separator: ".").compactMap { UInt8($0) }
        if !serverNames.ipAddresses.contains(apiServiceBytes) {
            logger.warning("the serving certificate does not name \(apiServiceAddress), the kubernetes service's address: pods reaching the API through it fail TLS verification (initialise with the default --service-cluster-ip-range, or reach the API by name)")
            serverNames.ipAddresses.append(apiServiceBytes)
        }
        let signer = CSRSigner(authority: try files.certificateAuthority(), store: store, autoApprove: autoApproveNodes,
                               serverNames: serverNames)
        let api = try APIServer(store: store, authenticator: Authenticator(store: store), signer: signer,
                                kubeletClient: try files.kubeletClientCredentials(), serviceAddressing: try serviceAddressing(), logger: logger)
        let server = APIHTTPServer(handler: api, tls: try files.serverTLSContext(), logger: logger, requestTimeoutSeconds: requestTimeout,
                                   limits: ClientLimits(connectionsPerAddress: maxConnectionsPerAddress, watchesPerClient: maxWatchesPerClient,
                                                        upgradesExemptForGroup: "system:nodes"))
        let startupLogger = logger
        let http = HTTPService(server: server, host: host, port: port) { boundPort in
            startupLogger.info("serving the Kubernetes API on https://\(host):\(boundPort)")
            ServiceNotifier.notify("READY=1\nSTATUS=serving on port \(boundPort)")
        }
        let scheduler = SchedulerService(store: store, logger: logger)
        let nodeLifecycle = NodeLifecycleService(
            store: store, logger: logger, gracePeriodSeconds: nodeMonitorGracePeriod,
            checkInterval: .seconds(max(1, min(5, nodeMonitorGracePeriod / 4))), evictAfterSeconds: evictUnreachableAfter)
        let csrCleaner = CSRCleanerService(store: store, logger: logger, interval: .seconds(csrCleanupInterval))
        // First, so the last to stop: it writes what is kept in memory after the API stopped.
        var services: [any Service] = [StoreFlushService(store: store, interval: .seconds(max(1, reconstructibleWriteInterval)), logger: logger),
                                       http, scheduler, nodeLifecycle, csrCleaner,
                                       ReplicaSetController(store: store, logger: logger), DeploymentController(store: store, logger: logger),
                                       DaemonSetController(store: store, logger: logger), JobController(store: store, logger: logger),
                                       CronJobController(store: store, logger: logger), EndpointSliceController(store: store, logger: logger, serviceNetwork: try serviceAddressing().network),
                                       APIServiceReconciler(api: api, address: settings.advertiseAddress, port: port, logger: logger),
                                       GarbageCollector(store: store, logger: logger, terminatedPodThreshold: terminatedPodGCThreshold, eventTTL: eventTTL)]
        if let network = try? IPv4Network(clusterCIDR, prefixes: 8...30) {
            services.append(NodeIPAMService(store: store, logger: logger, clusterCIDR: network, nodeMaskSize: nodeCIDRMaskSize))
        }
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        // However the group ends (a service that threw cancels the rest at once), what is kept
        // in memory is written before the process exits; a busy database is tried again.
        defer {
            for attempt in 1...5 {
                do {
                    try store.flush()
                    break
                } catch {
                    logger.error("writing lease renewals and node heartbeats at exit failed (attempt \(attempt) of 5): \(error)")
                    usleep(200_000)
                }
            }
        }
        try await group.run()
    }

    private func listenAddress(defaultPort: Int) throws -> (String, Int) {
        guard let listen else { return ("0.0.0.0", defaultPort) }
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("--listen must be HOST:PORT, got \"\(listen)\"")
        }
        var host = String(listen[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }
}
