import ImageStore
import KubeClient
import KubeModel
import Logging
import NIOPosix
import PodNetwork
import Runtime

/// What every pod worker of this node shares: the runtime, the image store, the pod network,
/// DNS settings, node facts for the downward API, the API client (nil while standalone) and
/// the status reporter.
public struct PodHost: Sendable {
    public var configuration: AgentConfiguration
    public var runtime: any PodRuntime
    public var images: any PodImageSource
    public var registry: RegistryConfiguration
    public var network: PodNetworkProvider
    public var dns: PodDNS
    /// The node's /etc/hosts (hostNetwork pods get it with their own entries).
    public var nodeHosts: String
    public var nodeHostname: String
    public var hostIPs: [String]
    public var nodeAllocatable: [String: Quantity]
    public var nodeMemoryCapacity: Int64
    /// Container logs: `<logDirectory>/<namespace>_<pod>_<uid>/<container>/<restart>.log`.
    public var logDirectory: String
    public var client: @Sendable () -> KubeAPIClient?
    public var status: PodStatusReporter
    /// Where pod events go (nil: none are recorded).
    public var events: PodEventRecorder?
    public var logger: Logger
    /// Rotation of running containers' logs.
    public var logRotation: ContainerLogRotation {
        ContainerLogRotation(maxBytes: configuration.containerLogMaxSize?.byteCount ?? 10 << 20, maxFiles: configuration.containerLogMaxFiles ?? 5)
    }
    /// The node's pressure conditions (admission refuses pods under pressure).
    public var pressure = NodePressure()
    /// Whether a graceful node shutdown began (admission refuses pods then).
    public var shutdown = NodeShutdownState()
    /// The node's labels from the API, for admission's nodeSelector check.
    public var nodeLabels = NodeLabels()
    /// The node's devices (nil: none are offered).
    public var devices: DeviceManager?
    /// Pod cgroups (nil: containers get cgroups of their own only, as in the workers' own tests).
    public var cgroups: PodCgroups?
    /// The clocks of decisions (since boot) and of reports (wall).
    public var clock = PodClock.system
    /// How often a running pod's containers are looked at (exits, probes, volume contents).
    public var syncInterval: Duration = .seconds(1)
    /// Tells workers of their containers' exits as they are recorded (nil: they look every
    /// ``syncInterval``).
    public var exitWatch: ContainerExitWatch?
    /// How often a pod whose containers all run and are watched is looked at (the log-size
    /// check is every 10 s).
    public var steadySyncInterval: Duration = .seconds(10)
    /// Where workers run what blocks a thread: runtime calls that wait for processes to exit,
    /// mounts, the sandbox and CNI plugins, file trees. Never Swift's cooperative
    /// threads (one per core), which also run the heartbeat, the lease and the API client.
    public var blockingPool: NIOThreadPool = PodHost.sharedBlockingPool

    /// Sixteen threads: pods starting together spend most of their setup waiting for child
    /// processes (CNI plugins, the container's monitor), and pods being
    /// removed wait for their processes to exit, so far more waits than cores overlap (ten
    /// starts next to ten removals: p50 580 ms on NIO's two threads, 330 ms on sixteen). An
    /// idle thread costs a few pages of stack; the agent caps malloc arenas at two, so the
    /// threads do not each keep one. Lives as long as the process, as NIO's pool does.
    public static let sharedBlockingPool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 16)
        pool.start()
        return pool
    }()

    public init(
        configuration: AgentConfiguration, runtime: any PodRuntime, images: any PodImageSource, registry: RegistryConfiguration,
        network: PodNetworkProvider, dns: PodDNS, nodeHosts: String, nodeHostname: String, hostIPs: [String],
        nodeAllocatable: [String: Quantity], nodeMemoryCapacity: Int64, logDirectory: String,
        client: @escaping @Sendable () -> KubeAPIClient?, status: PodStatusReporter, events: PodEventRecorder? = nil, logger: Logger
    ) {
        self.events = events
        self.configuration = configuration
        self.runtime = runtime
        self.images = images
        self.registry = registry
        self.network = network
        self.dns = dns
        self.nodeHosts = nodeHosts
        self.nodeHostname = nodeHostname
        self.hostIPs = hostIPs
        self.nodeAllocatable = nodeAllocatable
        self.nodeMemoryCapacity = nodeMemoryCapacity
        self.logDirectory = logDirectory
        self.client = client
        self.status = status
        self.logger = logger
    }

    /// Where a pod's sandbox, volumes, files and container roots live.
    public func podDirectory(uid: String) -> String { configuration.stateDir + "/pods/" + uid }

    /// Where `Localhost` seccomp profiles are looked for.
    public var seccompProfileRoot: String { configuration.stateDir + "/seccomp" }

    /// The log file of one run of a container.
    public func logPath(_ pod: Pod, container: String, restartCount: Int32) -> String {
        logDirectory + "/" + PodHost.logFolder(pod) + "/" + container + "/\(restartCount).log"
    }

    static func logFolder(_ pod: Pod) -> String {
        "\(pod.metadata.namespace ?? "default")_\(pod.metadata.name ?? "")_\(pod.metadata.uid ?? "")"
    }
}
