import KubeModel
import SystemSupport

/// A CNI network configuration list (`.conflist`; a single-plugin `.conf` is read as a list of
/// one), kept as JSON so plugin-specific fields pass through untouched.
public struct CNINetworkList: Sendable, Hashable {
    public var name: String
    public var cniVersion: String
    public var plugins: [JSONObject]
    /// Where it came from (a file path, or "the default network"), for error messages.
    public var source: String

    /// Parses and checks a configuration: a JSON object with a name, a cniVersion and plugins
    /// that each name their type (a plain file name: no path can be smuggled in).
    public static func parse(_ bytes: [UInt8], source: String) throws(NetworkError) -> CNINetworkList {
        let tree: JSONValue
        do { tree = try KubeJSON.parse(bytes) } catch { throw NetworkError("CNI configuration \(source): not valid JSON: \(error)") }
        guard let object = tree.objectValue else { throw NetworkError("CNI configuration \(source): not a JSON object") }
        guard let name = object["name"]?.stringValue, !name.isEmpty else { throw NetworkError("CNI configuration \(source): \"name\" is missing") }
        let cniVersion = object["cniVersion"]?.stringValue ?? "0.2.0"
        var plugins: [JSONObject]
        if let list = object["plugins"] {
            guard case .array(let items) = list, !items.isEmpty else { throw NetworkError("CNI configuration \(source): \"plugins\" must be a non-empty array") }
            plugins = []
            for (index, item) in items.enumerated() {
                guard let plugin = item.objectValue else { throw NetworkError("CNI configuration \(source): plugins[\(index)] is not an object") }
                plugins.append(plugin)
            }
        } else if object["type"] != nil {
            plugins = [object]
        } else {
            throw NetworkError("CNI configuration \(source): neither \"plugins\" nor \"type\"")
        }
        for (index, plugin) in plugins.enumerated() {
            guard let type = plugin["type"]?.stringValue, isPluginName(type) else {
                throw NetworkError("CNI configuration \(source): plugins[\(index)].type must be a plugin file name")
            }
        }
        return CNINetworkList(name: name, cniVersion: cniVersion, plugins: plugins, source: source)
    }

    static func isPluginName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && name.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2D || byte == 0x5F || byte == 0x2E
        }
    }

    /// The first configuration in `directory` by file name (`.conflist`, `.conf`, `.json`), as
    /// the kubelet and libcni pick it.
    public static func load(directory: String) throws(NetworkError) -> CNINetworkList {
        let files = FileTree.list(directory).filter { $0.hasSuffix(".conflist") || $0.hasSuffix(".conf") || $0.hasSuffix(".json") }.sorted()
        guard let first = files.first else { throw NetworkError("no CNI configuration in \(directory) (.conflist, .conf or .json)") }
        let path = directory + "/" + first
        let bytes: [UInt8]?
        do { bytes = try AtomicFile.read(path) } catch { throw NetworkError("CNI configuration \(path): \(error)") }
        guard let bytes else { throw NetworkError("CNI configuration \(path): cannot be read") }
        return try parse(bytes, source: path)
    }

    /// The agent's default network: a bridge with host-local addresses from the node's podCIDR
    /// and hostPorts through portmap. Outgoing traffic is masqueraded by the node-wide rules of
    /// ``PodEgressMasquerade``, not per pod by the bridge plugin.
    public static func standard(podCIDR: String, bridge: String = "iotkube0", ipamDataDirectory: String) -> CNINetworkList {
        var ipam = JSONObject()
        ipam["type"] = .string("host-local")
        ipam["ranges"] = .array([.array([.object(["subnet": .string(podCIDR)])])])
        ipam["routes"] = .array([.object(["dst": .string("0.0.0.0/0")])])
        ipam["dataDir"] = .string(ipamDataDirectory)
        var bridgePlugin = JSONObject()
        bridgePlugin["type"] = .string("bridge")
        bridgePlugin["bridge"] = .string(bridge)
        bridgePlugin["isGateway"] = .bool(true)
        bridgePlugin["ipMasq"] = .bool(false)
        bridgePlugin["hairpinMode"] = .bool(true)
        bridgePlugin["ipam"] = .object(ipam)
        var portmap = JSONObject()
        portmap["type"] = .string("portmap")
        portmap["capabilities"] = .object(["portMappings": .bool(true)])
        portmap["snat"] = .bool(true)
        return CNINetworkList(name: "iotkube", cniVersion: "1.0.0", plugins: [bridgePlugin, portmap], source: "the default network (\(podCIDR))")
    }

    /// The whole list as JSON (what `cni.conflist` would hold; cached with each attachment).
    public var json: JSONValue {
        var object = JSONObject()
        object["cniVersion"] = .string(cniVersion)
        object["name"] = .string(name)
        object["plugins"] = .array(plugins.map { .object($0) })
        return .object(object)
    }

    /// The configuration one plugin of the chain receives on stdin (CNI spec, "network
    /// configuration list"): its own object with the list's name and version, the previous
    /// result, and the runtime values its `capabilities` ask for.
    func pluginInput(_ index: Int, previousResult: JSONValue?, runtimeConfig: JSONObject) -> [UInt8] {
        var plugin = plugins[index]
        plugin["name"] = .string(name)
        plugin["cniVersion"] = .string(cniVersion)
        if let previousResult { plugin["prevResult"] = previousResult }
        var wanted = JSONObject()
        if let capabilities = plugin["capabilities"]?.objectValue {
            for member in capabilities where member.value == .bool(true) {
                if let value = runtimeConfig[member.key] { wanted[member.key] = value }
            }
        }
        if !wanted.isEmpty { plugin["runtimeConfig"] = .object(wanted) }
        return KubeJSON.serialize(.object(plugin))
    }
}
