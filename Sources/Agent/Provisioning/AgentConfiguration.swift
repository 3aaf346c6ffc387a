import FoundationEssentials
import KubeModel
import SystemSupport

/// The agent's configuration file (`/etc/iotkube/agent.yaml`), written by `join` and read by `run`.
public struct AgentConfiguration: Codable, Sendable, Hashable {
    /// The name this board registers as.
    public var nodeName: String = ""
    /// The API server, `https://host:port`.
    public var server: String = ""
    /// The kubeconfig with this node's client certificate.
    public var kubeconfig: String = ""
    /// The bootstrap token's kubeconfig (written by join): used to join again when the client
    /// certificate expired while the board was offline, as long as the token is valid.
    public var bootstrapKubeconfig: String?
    /// Where pods, images and checkpoints live.
    public var stateDir: String = "/var/lib/iotkube"
    /// The agent's own HTTPS endpoint (logs, metrics).
    public var port: Int32 = 10250
    /// Extra node labels.
    public var labels: [String: String]?
    /// Registries reached over plain HTTP or with unverified TLS (`host:port`).
    public var insecureRegistries: [String]?
    /// Registry host → mirror URLs tried in order before it (`docker.io: [https://mirror:5000]`).
    public var registryMirrors: [String: [String]]?
    /// Registry host → a PEM CA file trusted for it in addition to the system CAs.
    public var registryCAFiles: [String: String]?
    /// Registry credentials in Docker's config.json format (default `/etc/iotkube/registry-auth.json`).
    public var registryAuthFile: String?
    /// Image garbage collection starts when the image file system is fuller than this (default 85)…
    public var imageGCHighThresholdPercent: Int?
    /// …and removes unused images until it is at most this full (default 80).
    public var imageGCLowThresholdPercent: Int?
    /// Resources kept for the system and the agent: allocatable = capacity − these
    /// (e.g. `cpu: 100m`, `memory: 128Mi`).
    public var systemReserved: [String: Quantity]?
    /// Resources kept for the agent itself, taken off allocatable as systemReserved is.
    public var kubeReserved: [String: Quantity]?
    /// What node allocatable is enforced on (the kubelet's setting; default `[pods]`: the
    /// `kubepods` cgroup is limited to capacity − systemReserved − kubeReserved; `[]`: nothing).
    public var enforceNodeAllocatable: [String]?
    /// The most processes one pod may have (the kubelet's `podPidsLimit`; default: no limit).
    public var podPidsLimit: Int64?
    /// How pod cgroups are made: `systemd` (slices and scopes systemd makes; the default where
    /// systemd runs the board with cgroup v2) or `cgroupfs` (the hierarchy written directly).
    public var cgroupDriver: String?
    /// The kubelet's MemoryQoS (cgroup v2): `memory.min` from memory requests on containers,
    /// pods and the tiers, and `memory.high` below each container's limit (default false).
    public var memoryQoS: Bool?
    /// Where between request and limit `memory.high` sits with memoryQoS (default 0.9).
    public var memoryThrottlingFactor: Double?
    /// The cgroup `kubepods` is made in (the kubelet's `cgroupRoot`, default `/`).
    public var cgroupRoot: String?
    /// Whether pods get the kubepods hierarchy (QoS tiers, a cgroup per pod; the kubelet's
    /// setting, default true); false: each container has a cgroup of its own only.
    public var cgroupsPerQOS: Bool?
    /// This node's pod range when the API server assigns none (`spec.podCIDR` wins when set).
    public var podCIDR: String?
    /// Where a CNI configuration list is looked for (default `/etc/cni/net.d`); without one the
    /// agent's default bridge network over the pod range is used.
    public var cniConfigDirectory: String?
    /// Where CNI plugins are looked for (default `/usr/lib/cni`, `/opt/cni/bin`).
    public var cniBinDirectories: [String]?
    /// The cluster DNS servers for ClusterFirst pods (kubelet `clusterDNS`).
    public var clusterDNS: [String]?
    /// The cluster's DNS domain (default `cluster.local`).
    public var clusterDomain: String?
    /// Where container logs go (default `/var/log/pods`).
    public var podLogDirectory: String?
    /// A running container's log is rotated when it grows past this (default 10Mi)…
    public var containerLogMaxSize: Quantity?
    /// …keeping this many files per run, the live one included (default 5).
    public var containerLogMaxFiles: Int?
    /// Static pod manifests (default `/etc/iotkube/manifests`).
    public var staticPodPath: String?
    /// Whether the agent keeps a tunnel to iotkube-server (default true), through which the
    /// server reaches this board's endpoint when it cannot dial it (NAT).
    public var tunnel: Bool?
    /// Whether the agent is the node's service proxy and cluster DNS (default true; false where
    /// kube-proxy and CoreDNS run as pods).
    public var serviceProxy: Bool?
    /// `nftables` or `iptables` (kube-proxy's --proxy-mode); default: nftables when installed.
    public var serviceProxyMode: String?
    /// The container runtime's state (default `/run/iotkube/runtime`; a tmpfs, gone after a reboot).
    public var runtimeRoot: String?
    /// What makes the containers: `builtin` (default), or an OCI runtime (`crun`, `runc`, or its
    /// absolute path) behind the built-in one's monitor.
    public var runtime: String?
    /// Eviction thresholds as the kubelet names them (`memory.available: 100Mi`,
    /// `nodefs.available: 10%`); given, they replace the defaults; `{}` turns hard eviction off.
    public var evictionHard: [String: String]?
    public var evictionSoft: [String: String]?
    /// PSI: MemoryPressure, and memory eviction, also when every task was stalled on memory
    /// this share (percent) of the last 10 s (/proc/pressure/memory `full avg10`) for
    /// memoryPressureStallGracePeriod (default 30s); nil: memory.available alone decides.
    public var memoryPressureStallPercent: Double?
    public var memoryPressureStallGracePeriod: String?
    public var evictionSoftGracePeriod: [String: String]?
    public var evictionMinimumReclaim: [String: String]?
    /// How long a pressure condition stays after its threshold was last met (default 5m).
    public var evictionPressureTransitionPeriod: String?
    /// The longest grace period a soft eviction gives a pod, in seconds (default: the pod's own).
    public var evictionMaxPodGracePeriod: Int64?
    /// The most pods this node runs (kubelet `maxPods`, default 110).
    public var maxPods: Int?
    /// hostPath volumes must be under one of these paths (nil: any path; `[]`: no hostPath).
    public var allowedHostPaths: [String]?
    /// How long an exec, attach or port-forward stream may pass no data before it is closed
    /// (the kubelet's `streamingConnectionIdleTimeout`; a duration like "4h"; "0": never).
    public var streamingConnectionIdleTimeout: String?
    /// Host devices pods may ask for, advertised as `devices.iotkube.io/<name>`.
    public var devices: [DeviceClass]?
    /// Whether the built-in device classes (gpio, i2c, spi, serial, video, camera) are offered (default true).
    public var builtinDevices: Bool?
    /// Where device plugins register (`kubelet.sock`) and listen (default
    /// `/var/lib/kubelet/device-plugins`, the kubelet's; "" turns the device plugin API off).
    public var devicePluginDirectory: String?
    /// Image archives imported (and pinned) at start and whenever they change (default
    /// `<stateDir>/images-preload`; "" turns pre-loading off).
    public var imagePreloadDirectory: String?
    /// Graceful node shutdown (the kubelet's): how long a shutdown waits for the pods (a
    /// duration like "30s"; default 0: off), the part of it kept for critical pods, or per pod
    /// priority instead of both. See ``shutdownPlan()``.
    public var shutdownGracePeriod: String?
    public var shutdownGracePeriodCriticalPods: String?
    public var shutdownGracePeriodByPodPriority: [ShutdownGracePeriodByPodPriority]?
    public var unknownFields = UnknownFields()

    public init() {}

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        nodeName = try container.decode(String.self, forKey: .nodeName)
        server = try container.decode(String.self, forKey: .server)
        kubeconfig = try container.decode(String.self, forKey: .kubeconfig)
        bootstrapKubeconfig = try container.decodeIfPresent(String.self, forKey: .bootstrapKubeconfig)
        // Settings with defaults may be left out of the file.
        stateDir = try container.decodeIfPresent(String.self, forKey: .stateDir) ?? "/var/lib/iotkube"
        port = try container.decodeIfPresent(Int32.self, forKey: .port) ?? 10250
        labels = try container.decodeIfPresent([String: String].self, forKey: .labels)
        insecureRegistries = try container.decodeIfPresent([String].self, forKey: .insecureRegistries)
        systemReserved = try container.decodeIfPresent([String: Quantity].self, forKey: .systemReserved)
        kubeReserved = try container.decodeIfPresent([String: Quantity].self, forKey: .kubeReserved)
        enforceNodeAllocatable = try container.decodeIfPresent([String].self, forKey: .enforceNodeAllocatable)
        podPidsLimit = try container.decodeIfPresent(Int64.self, forKey: .podPidsLimit)
        cgroupDriver = try container.decodeIfPresent(String.self, forKey: .cgroupDriver)
        cgroupRoot = try container.decodeIfPresent(String.self, forKey: .cgroupRoot)
        cgroupsPerQOS = try container.decodeIfPresent(Bool.self, forKey: .cgroupsPerQOS)
        memoryQoS = try container.decodeIfPresent(Bool.self, forKey: .memoryQoS)
        memoryThrottlingFactor = try container.decodeIfPresent(Double.self, forKey: .memoryThrottlingFactor)
        registryMirrors = try container.decodeIfPresent([String: [String]].self, forKey: .registryMirrors)
        registryCAFiles = try container.decodeIfPresent([String: String].self, forKey: .registryCAFiles)
        registryAuthFile = try container.decodeIfPresent(String.self, forKey: .registryAuthFile)
        imageGCHighThresholdPercent = try container.decodeIfPresent(Int.self, forKey: .imageGCHighThresholdPercent)
        imageGCLowThresholdPercent = try container.decodeIfPresent(Int.self, forKey: .imageGCLowThresholdPercent)
        podCIDR = try container.decodeIfPresent(String.self, forKey: .podCIDR)
        cniConfigDirectory = try container.decodeIfPresent(String.self, forKey: .cniConfigDirectory)
        cniBinDirectories = try container.decodeIfPresent([String].self, forKey: .cniBinDirectories)
        clusterDNS = try container.decodeIfPresent([String].self, forKey: .clusterDNS)
        clusterDomain = try container.decodeIfPresent(String.self, forKey: .clusterDomain)
        podLogDirectory = try container.decodeIfPresent(String.self, forKey: .podLogDirectory)
        runtimeRoot = try container.decodeIfPresent(String.self, forKey: .runtimeRoot)
        runtime = try container.decodeIfPresent(String.self, forKey: .runtime)
        staticPodPath = try container.decodeIfPresent(String.self, forKey: .staticPodPath)
        tunnel = try container.decodeIfPresent(Bool.self, forKey: .tunnel)
        serviceProxy = try container.decodeIfPresent(Bool.self, forKey: .serviceProxy)
        serviceProxyMode = try container.decodeIfPresent(String.self, forKey: .serviceProxyMode)
        containerLogMaxSize = try container.decodeIfPresent(Quantity.self, forKey: .containerLogMaxSize)
        containerLogMaxFiles = try container.decodeIfPresent(Int.self, forKey: .containerLogMaxFiles)
        evictionHard = try container.decodeIfPresent([String: String].self, forKey: .evictionHard)
        evictionSoft = try container.decodeIfPresent([String: String].self, forKey: .evictionSoft)
        memoryPressureStallPercent = try container.decodeIfPresent(Double.self, forKey: .memoryPressureStallPercent)
        memoryPressureStallGracePeriod = try container.decodeIfPresent(String.self, forKey: .memoryPressureStallGracePeriod)
        evictionSoftGracePeriod = try container.decodeIfPresent([String: String].self, forKey: .evictionSoftGracePeriod)
        evictionMinimumReclaim = try container.decodeIfPresent([String: String].self, forKey: .evictionMinimumReclaim)
        evictionPressureTransitionPeriod = try container.decodeIfPresent(String.self, forKey: .evictionPressureTransitionPeriod)
        evictionMaxPodGracePeriod = try container.decodeIfPresent(Int64.self, forKey: .evictionMaxPodGracePeriod)
        maxPods = try container.decodeIfPresent(Int.self, forKey: .maxPods)
        allowedHostPaths = try container.decodeIfPresent([String].self, forKey: .allowedHostPaths)
        streamingConnectionIdleTimeout = try container.decodeIfPresent(String.self, forKey: .streamingConnectionIdleTimeout)
        devices = try container.decodeIfPresent([DeviceClass].self, forKey: .devices)
        builtinDevices = try container.decodeIfPresent(Bool.self, forKey: .builtinDevices)
        devicePluginDirectory = try container.decodeIfPresent(String.self, forKey: .devicePluginDirectory)
        imagePreloadDirectory = try container.decodeIfPresent(String.self, forKey: .imagePreloadDirectory)
        shutdownGracePeriod = try container.decodeIfPresent(String.self, forKey: .shutdownGracePeriod)
        shutdownGracePeriodCriticalPods = try container.decodeIfPresent(String.self, forKey: .shutdownGracePeriodCriticalPods)
        shutdownGracePeriodByPodPriority = try container.decodeIfPresent([ShutdownGracePeriodByPodPriority].self, forKey: .shutdownGracePeriodByPodPriority)
        unknownFields = try container.decode(UnknownFields.self, forKey: .unknownFields)
    }

    enum CodingKeys: String, CodingKey {
        case nodeName, server, kubeconfig, bootstrapKubeconfig, stateDir, port, labels, insecureRegistries, registryMirrors, registryCAFiles, registryAuthFile, imageGCHighThresholdPercent, imageGCLowThresholdPercent, systemReserved, podCIDR, cniConfigDirectory, cniBinDirectories, clusterDNS, clusterDomain, podLogDirectory, runtimeRoot, staticPodPath, tunnel, serviceProxy, serviceProxyMode, containerLogMaxSize, containerLogMaxFiles
        case evictionHard, evictionSoft, evictionSoftGracePeriod, evictionMinimumReclaim, evictionPressureTransitionPeriod, evictionMaxPodGracePeriod, maxPods, allowedHostPaths, streamingConnectionIdleTimeout, devices, builtinDevices, devicePluginDirectory, imagePreloadDirectory, unknownFields
        case kubeReserved, enforceNodeAllocatable, podPidsLimit, cgroupDriver, cgroupRoot, cgroupsPerQOS, runtime, memoryQoS, memoryThrottlingFactor, memoryPressureStallPercent, memoryPressureStallGracePeriod
        case shutdownGracePeriod, shutdownGracePeriodCriticalPods, shutdownGracePeriodByPodPriority
    }

    /// Reads and checks a configuration file; errors name the file and the field.
    public static func load(_ path: String) throws -> AgentConfiguration {
        guard let bytes = try AtomicFile.read(path) else { throw ProvisioningError("\(path) does not exist: run `iotkube-agent join` first") }
        do {
            let configuration = try KubeYAML.decode(AgentConfiguration.self, from: bytes, validation: .strict)
            guard !configuration.nodeName.isEmpty, configuration.server.hasPrefix("https://") else {
                throw ProvisioningError("\(path): nodeName and an https:// server are required")
            }
            let high = configuration.imageGCHighThresholdPercent ?? 85
            let low = configuration.imageGCLowThresholdPercent ?? 80
            guard (0...100).contains(high), (0...100).contains(low), low < high else {
                throw ProvisioningError("\(path): imageGCLowThresholdPercent (\(low)) must be below imageGCHighThresholdPercent (\(high)), both 0-100")
            }
            try configuration.validateNetwork(path)
            do { _ = try configuration.evictionSettings() } catch { throw ProvisioningError("\(path): \(error)") }
            do { _ = try configuration.streamIdleTimeout() } catch { throw ProvisioningError("\(path): \(error)") }
            if let maxPods = configuration.maxPods, !(1...100_000).contains(maxPods) { throw ProvisioningError("\(path): maxPods (\(maxPods)) must be 1 to 100000") }
            // As the kubelet refuses --node-labels the API server's NodeRestriction would refuse.
            let forbidden = KubeletLabels.forbidden((configuration.labels ?? [:]).keys)
            if !forbidden.isEmpty {
                throw ProvisioningError("\(path): labels: a node may not set \(forbidden.joined(separator: ", ")) on itself (NodeRestriction); an administrator labels the Node instead")
            }
            guard (1...65535).contains(configuration.port) else { throw ProvisioningError("\(path): port (\(configuration.port)) must be 1 to 65535") }
            if let files = configuration.containerLogMaxFiles, !(1...1000).contains(files) {
                throw ProvisioningError("\(path): containerLogMaxFiles (\(files)) must be 1 to 1000")
            }
            if let size = configuration.containerLogMaxSize, size.sign <= 0 || size.byteCount > 1 << 40 {
                throw ProvisioningError("\(path): containerLogMaxSize (\(size)) must be more than 0 and at most 1Ti")
            }
            if let grace = configuration.evictionMaxPodGracePeriod, grace < 0 {
                throw ProvisioningError("\(path): evictionMaxPodGracePeriod (\(grace)) must not be negative")
            }
            for allowed in configuration.allowedHostPaths ?? [] where !allowed.hasPrefix("/") {
                throw ProvisioningError("\(path): allowedHostPaths: \"\(allowed)\" is not an absolute path")
            }
            try configuration.validateDevices(path)
            try configuration.validateImagePreload(path)
            try configuration.validateCgroups(path)
            do { _ = try configuration.shutdownPlan() } catch { throw ProvisioningError("\(path): \(error)") }
            return configuration
        } catch let error as KubeDecodingError {
            // The line of the field, or of the nearest enclosing one the file has.
            let lines = KubeYAML.lines(bytes)
            var field = error.path
            while !field.isEmpty, lines[field] == nil {
                field = String(field[..<(field.lastIndex { $0 == "." || $0 == "[" } ?? field.startIndex)])
            }
            throw ProvisioningError("\(path)\(lines[field].map { ": line \($0)" } ?? ""): \(error)")
        }
    }

    /// The file as YAML (every value quoted, so nothing is reinterpreted on reading).
    public var yaml: String {
        func quote(_ text: String) -> String {
            var escaped = "\""
            for character in text {
                switch character {
                case "\"": escaped += "\\\""
                case "\\": escaped += "\\\\"
                case "\n": escaped += "\\n"
                default: escaped.append(character)
                }
            }
            return escaped + "\""
        }
        var text = """
            # iotkube-agent configuration, written by `iotkube-agent join`.
            nodeName: \(quote(nodeName))
            server: \(quote(server))
            kubeconfig: \(quote(kubeconfig))
            stateDir: \(quote(stateDir))
            port: \(port)

            """
        if let bootstrapKubeconfig { text += "bootstrapKubeconfig: \(quote(bootstrapKubeconfig))\n" }
        if let labels, !labels.isEmpty {
            text += "labels:\n" + labels.keys.sorted().map { "  \(quote($0)): \(quote(labels[$0]!))\n" }.joined()
        }
        if let insecureRegistries, !insecureRegistries.isEmpty {
            text += "insecureRegistries:\n" + insecureRegistries.map { "  - \(quote($0))\n" }.joined()
        }
        if let registryMirrors, !registryMirrors.isEmpty {
            text += "registryMirrors:\n" + registryMirrors.keys.sorted().map { key in
                "  \(quote(key)):\n" + registryMirrors[key]!.map { "    - \(quote($0))\n" }.joined()
            }.joined()
        }
        if let registryCAFiles, !registryCAFiles.isEmpty {
            text += "registryCAFiles:\n" + registryCAFiles.keys.sorted().map { "  \(quote($0)): \(quote(registryCAFiles[$0]!))\n" }.joined()
        }
        if let registryAuthFile { text += "registryAuthFile: \(quote(registryAuthFile))\n" }
        if let imageGCHighThresholdPercent { text += "imageGCHighThresholdPercent: \(imageGCHighThresholdPercent)\n" }
        if let imageGCLowThresholdPercent { text += "imageGCLowThresholdPercent: \(imageGCLowThresholdPercent)\n" }
        if let systemReserved, !systemReserved.isEmpty {
            text += "systemReserved:\n" + systemReserved.keys.sorted().map { "  \(quote($0)): \(quote(systemReserved[$0]!.description))\n" }.joined()
        }
        if let podCIDR { text += "podCIDR: \(quote(podCIDR))\n" }
        if let cniConfigDirectory { text += "cniConfigDirectory: \(quote(cniConfigDirectory))\n" }
        if let cniBinDirectories, !cniBinDirectories.isEmpty { text += "cniBinDirectories:\n" + cniBinDirectories.map { "  - \(quote($0))\n" }.joined() }
        if let clusterDNS, !clusterDNS.isEmpty { text += "clusterDNS:\n" + clusterDNS.map { "  - \(quote($0))\n" }.joined() }
        if let clusterDomain { text += "clusterDomain: \(quote(clusterDomain))\n" }
        if let podLogDirectory { text += "podLogDirectory: \(quote(podLogDirectory))\n" }
        if let runtimeRoot { text += "runtimeRoot: \(quote(runtimeRoot))\n" }
        if let staticPodPath { text += "staticPodPath: \(quote(staticPodPath))\n" }
        if let tunnel { text += "tunnel: \(tunnel)\n" }
        if let serviceProxy { text += "serviceProxy: \(serviceProxy)\n" }
        if let serviceProxyMode { text += "serviceProxyMode: \(quote(serviceProxyMode))\n" }
        if let containerLogMaxSize { text += "containerLogMaxSize: \(quote(containerLogMaxSize.description))\n" }
        if let containerLogMaxFiles { text += "containerLogMaxFiles: \(containerLogMaxFiles)\n" }
        for (field, map) in [("evictionHard", evictionHard), ("evictionSoft", evictionSoft), ("evictionSoftGracePeriod", evictionSoftGracePeriod),
                             ("evictionMinimumReclaim", evictionMinimumReclaim)] {
            guard let map else { continue }
            text += map.isEmpty ? "\(field): {}\n" : "\(field):\n" + map.sorted { $0.key < $1.key }.map { "  \(quote($0.key)): \(quote($0.value))\n" }.joined()
        }
        if let evictionPressureTransitionPeriod { text += "evictionPressureTransitionPeriod: \(quote(evictionPressureTransitionPeriod))\n" }
        if let evictionMaxPodGracePeriod { text += "evictionMaxPodGracePeriod: \(evictionMaxPodGracePeriod)\n" }
        if let maxPods { text += "maxPods: \(maxPods)\n" }
        if let streamingConnectionIdleTimeout { text += "streamingConnectionIdleTimeout: \(quote(streamingConnectionIdleTimeout))\n" }
        if let builtinDevices { text += "builtinDevices: \(builtinDevices)\n" }
        if let devicePluginDirectory { text += "devicePluginDirectory: \(quote(devicePluginDirectory))\n" }
        if let imagePreloadDirectory { text += "imagePreloadDirectory: \(quote(imagePreloadDirectory))\n" }
        if let devices, !devices.isEmpty {
            text += "devices:\n" + devices.map { device in
                var entry = "  - name: \(quote(device.name))\n"
                if let paths = device.paths { entry += "    paths: [" + paths.map(quote).joined(separator: ", ") + "]\n" }
                for (key, value) in [("subsystem", device.subsystem), ("vendorID", device.vendorID), ("productID", device.productID)] {
                    if let value { entry += "    \(key): \(quote(value))\n" }
                }
                if let perContainer = device.perContainer { entry += "    perContainer: \(perContainer)\n" }
                if let grouped = device.grouped { entry += "    grouped: \(grouped)\n" }
                return entry
            }.joined()
        }
        if let allowedHostPaths { text += allowedHostPaths.isEmpty ? "allowedHostPaths: []\n" : "allowedHostPaths:\n" + allowedHostPaths.map { "  - \(quote($0))\n" }.joined() }
        return text
    }
}

/// Why provisioning stopped; the message says what to do.
public struct ProvisioningError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension AgentConfiguration {
    /// The device classes in effect (built-in ones unless switched off, then the configured ones).
    public var deviceClasses: [DeviceClass] { DeviceClass.effective(configured: devices, builtin: builtinDevices) }

    /// Refuses a devices section the agent would have to guess about: the error names the entry,
    /// its line in the file where it can be found, and what is wrong.
    func validateDevices(_ path: String) throws(ProvisioningError) {
        if let directory = devicePluginDirectory, !directory.isEmpty, !directory.hasPrefix("/") || directory.utf8.count > 80 {
            throw ProvisioningError("\(path): devicePluginDirectory: \"\(directory)\" must be an absolute path of at most 80 bytes (socket paths are short)")
        }
        // No hostPath may reach the device plugin directory (a pod there could register a plugin
        // whose answers mount any host path): an allowed path must neither hold it nor lie in it.
        // Checked here, on the resolved paths, because a hostPath is checked on where it really is.
        if let allowed = allowedHostPaths, devicePluginDirectory != "" {
            let plugins = Self.resolvedAsFarAsItExists(devicePluginDirectory ?? DevicePluginService.defaultDirectory)
            for entry in allowed {
                let resolved = Self.resolvedAsFarAsItExists(entry)
                if PodAdmission.isWithin(plugins, resolved) || PodAdmission.isWithin(resolved, plugins) {
                    throw ProvisioningError("\(path): allowedHostPaths: \"\(entry)\" reaches the device plugin directory \(plugins): a pod could register a device plugin; allow narrower paths, or set devicePluginDirectory elsewhere (\"\" turns device plugins off)")
                }
            }
        }
        var names = Set<String>()
        let lines = (try? AtomicFile.read(path)).map(KubeYAML.lines) ?? [:]
        func line(_ index: Int) -> String { lines["devices[\(index)]"].map { ": line \($0)" } ?? "" }
        for (index, device) in (devices ?? []).enumerated() {
            if let problem = device.problem(field: "devices[\(index)]") { throw ProvisioningError("\(path)\(line(index)): \(problem)") }
            if !names.insert(device.name).inserted {
                throw ProvisioningError("\(path)\(line(index)): devices[\(index)].name: \"\(device.name)\" is given twice")
            }
        }
    }

    /// `path` with its existing part resolved (symbolic links followed) and the rest appended.
    static func resolvedAsFarAsItExists(_ path: String) -> String {
        var existing = path, rest: [Substring] = []
        while !existing.isEmpty, existing != "/" {
            if let resolved = PodAdmission.resolvedPath(existing) { return ([resolved] + rest.map(String.init)).joined(separator: "/") }
            guard let slash = existing.lastIndex(of: "/") else { break }
            rest.insert(existing[existing.index(after: slash)...], at: 0)
            existing = String(existing[..<slash])
        }
        return path
    }

    /// `streamingConnectionIdleTimeout` (default 4 h, the kubelet's); nil: streams never idle out.
    public func streamIdleTimeout() throws(ProvisioningError) -> Duration? {
        guard let text = streamingConnectionIdleTimeout else { return .seconds(4 * 3600) }
        guard let duration = EvictionSettings.parseDuration(text), duration >= .zero, duration <= .seconds(366 * 86400) else {
            throw ProvisioningError("streamingConnectionIdleTimeout: \"\(text)\" is not a duration from 0 (never) to 8784h (like 30m, 4h)")
        }
        return duration == .zero ? nil : duration
    }
}
