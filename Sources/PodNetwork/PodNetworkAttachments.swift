import CRuntime
import KubeModel
import SystemSupport

/// Attaches pod sandboxes to a CNI network and detaches them, with every attachment cached on
/// disk (the configuration used, the runtime values, the result) so that DEL after an agent
/// restart or crash gets exactly what ADD got, and leases of sandboxes that no longer exist can
/// be released on the next start.
public struct PodNetworkAttachments: Sendable {
    public var network: CNINetworkList
    public var plugins: CNIPlugins
    /// One JSON file per attachment (written before ADD, completed after it).
    public var cacheDirectory: String

    public init(network: CNINetworkList, plugins: CNIPlugins, cacheDirectory: String) {
        self.network = network
        self.plugins = plugins
        self.cacheDirectory = cacheDirectory
    }

    /// Who is being attached; `sandboxID` names the attachment (CNI_CONTAINERID).
    public struct Pod: Sendable {
        public var sandboxID: String
        public var namespace: String
        public var name: String
        public var uid: String
        public var networkNamespace: String
        public var portMappings: [PortMapping]
        public init(sandboxID: String, namespace: String, name: String, uid: String, networkNamespace: String, portMappings: [PortMapping] = []) {
            self.sandboxID = sandboxID
            self.namespace = namespace
            self.name = name
            self.uid = uid
            self.networkNamespace = networkNamespace
            self.portMappings = portMappings
        }
    }

    /// What ADD gave the pod.
    public struct Attachment: Sendable, Hashable {
        public var sandboxID: String
        /// Pod IPs without prefix length, IPv4 first.
        public var ips: [String]
        public var interfaceName: String
    }

    static let interfaceName = "eth0"

    func cachePath(_ sandboxID: String) -> String { cacheDirectory + "/" + sandboxID + ".json" }

    /// Runs the chain's ADD (each plugin gets the previous result). A failure runs DEL over the
    /// chain so nothing half-made stays (addresses, veths, iptables rules).
    public func add(_ pod: Pod) throws(NetworkError) -> Attachment {
        guard CNINetworkList.isPluginName(pod.sandboxID) else { throw NetworkError("sandbox ID \"\(pod.sandboxID)\" is not a plain name") }
        // Host ports: taken by a host process, or by another pod of this node.
        let others = cachedEntries().filter { $0.sandboxID != pod.sandboxID }
        for mapping in pod.portMappings {
            if let owner = others.first(where: { $0.portMappings.contains(where: mapping.conflicts) }) {
                throw NetworkError("pod \(pod.namespace)/\(pod.name): hostPort \(mapping.label) is already used by pod \(owner.podLabel)")
            }
            if mapping.isTakenOnHost() { throw NetworkError("pod \(pod.namespace)/\(pod.name): hostPort \(mapping.label) is already in use on this node") }
        }
        let entry = CacheEntry(sandboxID: pod.sandboxID, podLabel: "\(pod.namespace)/\(pod.name)", networkNamespace: pod.networkNamespace,
                               network: network, arguments: arguments(pod), portMappings: pod.portMappings, result: nil)
        try save(entry)
        var result: JSONValue?
        do throws(NetworkError) {
            for index in network.plugins.indices where !entry.skips(network.plugins[index]) {
                let input = network.pluginInput(index, previousResult: result, runtimeConfig: entry.runtimeConfig)
                result = try plugins.run(network.plugins[index]["type"]?.stringValue ?? "", invocation("ADD", entry), input: input, network: network.name)
            }
        } catch {
            do { try delete(sandboxID: pod.sandboxID) } catch let cleanup {
                throw NetworkError("\(error); cleaning up failed too (retried when the pod goes): \(cleanup)")
            }
            throw error
        }
        var completed = entry
        completed.result = result
        try save(completed)
        return Attachment(sandboxID: pod.sandboxID, ips: Self.ips(in: result), interfaceName: Self.interfaceName)
    }

    /// Runs the chain's DEL in reverse with the cached configuration and result; the cache entry
    /// goes only when every plugin succeeded (so a later retry still knows what to release).
    /// Without a cache entry the current configuration is used. A gone network namespace is
    /// fine: plugins release addresses and rules without it (CNI_NETNS empty).
    public func delete(sandboxID: String) throws(NetworkError) {
        let entry = cachedEntry(sandboxID) ?? CacheEntry(
            sandboxID: sandboxID, podLabel: sandboxID, networkNamespace: "", network: network, arguments: [], portMappings: [], result: nil)
        var firstError: NetworkError?
        for index in entry.network.plugins.indices.reversed() where !entry.skips(entry.network.plugins[index]) {
            let input = entry.network.pluginInput(index, previousResult: entry.result, runtimeConfig: entry.runtimeConfig)
            do {
                _ = try plugins.run(entry.network.plugins[index]["type"]?.stringValue ?? "", invocation("DEL", entry), input: input, network: entry.network.name)
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        if let firstError { throw firstError }
        do { try FileTree.remove(cachePath(sandboxID)) } catch { throw NetworkError("removing \(cachePath(sandboxID)): \(error)") }
    }

    /// The IPs recorded for an attachment (after a restart, without calling a plugin).
    public func attachment(sandboxID: String) -> Attachment? {
        guard let entry = cachedEntry(sandboxID), entry.result != nil else { return nil }
        return Attachment(sandboxID: sandboxID, ips: Self.ips(in: entry.result), interfaceName: Self.interfaceName)
    }

    /// Sandbox IDs with a cache entry (complete or interrupted).
    public var attachedSandboxIDs: [String] { cachedEntries().map(\.sandboxID).sorted() }

    /// Releases every attachment whose sandbox is not in `live` (after an unclean stop: the
    /// agent's next start frees their addresses, veths and rules). Failures stay cached for
    /// the next attempt.
    @discardableResult
    public func releaseStale(keeping live: Set<String>) -> (released: [String], failures: [String: NetworkError]) {
        var released: [String] = [], failures: [String: NetworkError] = [:]
        for id in attachedSandboxIDs where !live.contains(id) {
            do { try delete(sandboxID: id); released.append(id) } catch { failures[id] = error }
        }
        return (released, failures)
    }

    // MARK: cache

    struct CacheEntry {
        var sandboxID: String
        var podLabel: String
        var networkNamespace: String
        var network: CNINetworkList
        var arguments: [(String, String)]
        var portMappings: [PortMapping]
        var result: JSONValue?

        var runtimeConfig: JSONObject {
            portMappings.isEmpty ? [:] : ["portMappings": .array(portMappings.map(\.json))]
        }

        /// portmap has nothing to do for a pod without hostPorts (its ADD returns the previous
        /// result at once, making no rule, and its DEL only looks for rules): two plugin runs and
        /// their iptables calls saved per pod. Decided by the cache entry, so ADD and DEL agree.
        func skips(_ plugin: JSONObject) -> Bool {
            portMappings.isEmpty && plugin["type"]?.stringValue == "portmap"
        }
    }

    func arguments(_ pod: Pod) -> [(String, String)] {
        [("IgnoreUnknown", "1"), ("K8S_POD_NAMESPACE", pod.namespace), ("K8S_POD_NAME", pod.name),
         ("K8S_POD_INFRA_CONTAINER_ID", pod.sandboxID), ("K8S_POD_UID", pod.uid)]
    }

    func invocation(_ command: String, _ entry: CacheEntry) -> CNIPlugins.Invocation {
        // DEL of a sandbox whose namespace is gone (a reboot) passes an empty CNI_NETNS, as the
        // spec asks: plugins then release what lives outside it (the address lease).
        let namespace = command == "DEL" && iotkube_is_namespace_file(entry.networkNamespace) != 1 ? "" : entry.networkNamespace
        return CNIPlugins.Invocation(command: command, containerID: entry.sandboxID, networkNamespace: namespace,
                                     interfaceName: Self.interfaceName, arguments: entry.arguments)
    }

    func save(_ entry: CacheEntry) throws(NetworkError) {
        var object: JSONObject = [
            "kind": .string("iotkubeCNICacheV1"), "sandboxID": .string(entry.sandboxID), "pod": .string(entry.podLabel),
            "netns": .string(entry.networkNamespace), "source": .string(entry.network.source), "config": entry.network.json,
            "cniArgs": .array(entry.arguments.map { .array([.string($0.0), .string($0.1)]) }),
            "portMappings": .array(entry.portMappings.map(\.json)),
        ]
        if let result = entry.result { object["result"] = result }
        do {
            try FileTree.makeDirectories(cacheDirectory, mode: 0o700)
            try AtomicFile.write(KubeJSON.serialize(.object(object), pretty: true), to: cachePath(entry.sandboxID), mode: 0o600)
        } catch { throw NetworkError("writing the network cache \(cachePath(entry.sandboxID)): \(error)") }
    }

    func cachedEntry(_ sandboxID: String) -> CacheEntry? {
        guard let bytes = try? AtomicFile.read(cachePath(sandboxID)), let tree = try? KubeJSON.parse(bytes),
              let config = tree["config"], let network = try? CNINetworkList.parse(KubeJSON.serialize(config), source: tree["source"]?.stringValue ?? "cache")
        else { return nil }
        var arguments: [(String, String)] = []
        if case .array(let pairs)? = tree["cniArgs"] {
            for pair in pairs { if case .array(let items) = pair, items.count == 2, let key = items[0].stringValue, let value = items[1].stringValue { arguments.append((key, value)) } }
        }
        var mappings: [PortMapping] = []
        if case .array(let items)? = tree["portMappings"] { mappings = items.compactMap(PortMapping.init(json:)) }
        return CacheEntry(sandboxID: sandboxID, podLabel: tree["pod"]?.stringValue ?? sandboxID, networkNamespace: tree["netns"]?.stringValue ?? "",
                          network: network, arguments: arguments, portMappings: mappings, result: tree["result"])
    }

    func cachedEntries() -> [CacheEntry] {
        FileTree.list(cacheDirectory).filter { $0.hasSuffix(".json") }.compactMap { cachedEntry(String($0.dropLast(5))) }
    }

    /// "10.88.0.5/24" → "10.88.0.5", IPv4 first.
    static func ips(in result: JSONValue?) -> [String] {
        guard case .array(let entries)? = result?["ips"] else { return [] }
        let addresses = entries.compactMap { $0["address"]?.stringValue }.map { String($0.split(separator: "/").first ?? "") }.filter { !$0.isEmpty }
        return addresses.filter { !$0.contains(":") } + addresses.filter { $0.contains(":") }
    }
}
