import KubeClient
import KubeModel
import PodNetwork
import Runtime
import SystemSupport

/// The node's pod network, made once it is known: from a CNI configuration on the board, else
/// the default bridge over the node's pod range. The range comes from `agent.yaml` or from the
/// Node's `spec.podCIDR`; a range learnt from the API is kept in the state directory so pods
/// can be networked again after a reboot while the server is unreachable (written once).
public actor PodNetworkProvider {
    let configuration: AgentConfiguration
    let client: @Sendable () -> KubeAPIClient?
    var attachments: PodNetworkAttachments?

    public init(configuration: AgentConfiguration, client: @escaping @Sendable () -> KubeAPIClient?) {
        self.configuration = configuration
        self.client = client
    }

    var rememberedRangeFile: String { configuration.stateDir + "/network/node-pod-cidr" }

    /// The attachments of this node's pod network; errors say what is missing.
    public func network() async throws(NetworkError) -> PodNetworkAttachments {
        if let attachments { return attachments }
        var nodeRange: String?
        if configuration.podCIDR == nil {
            nodeRange = FileTree.readText(rememberedRangeFile).map { Array($0.utf8).trimmedText }
            if nodeRange?.isEmpty ?? true, let client = client() {
                nodeRange = try? await client.get(Node.self, name: configuration.nodeName).spec?.podCIDR
                if let nodeRange, !nodeRange.isEmpty {
                    try? FileTree.makeDirectories(configuration.stateDir + "/network", mode: 0o700)
                    try? AtomicFile.write(nodeRange + "\n", to: rememberedRangeFile, mode: 0o644)
                }
            }
        }
        let made = try configuration.podNetwork(nodePodCIDR: nodeRange.flatMap { $0.isEmpty ? nil : $0 })
        attachments = made
        return made
    }

    /// The attachments as far as they are known without asking anyone (for releasing stale ones).
    public func cached() -> PodNetworkAttachments? { attachments }
}
