/// A node: a board running the agent.
public struct Node: KubeObject {
    public static let apiVersion = "v1"
    public static let kind = "Node"

    public var apiVersion: String? = Node.apiVersion
    public var kind: String? = Node.kind
    public var metadata = ObjectMeta()
    public var spec: NodeSpec?
    public var status: NodeStatus?
    public var unknownFields = UnknownFields()

    public init(metadata: ObjectMeta = ObjectMeta(), spec: NodeSpec? = nil, status: NodeStatus? = nil) {
        self.metadata = metadata
        self.spec = spec
        self.status = status
    }
}

/// How the node is configured: pod address range, taints, schedulability.
public struct NodeSpec: Codable, Sendable, Hashable {
    public var podCIDR: String?
    public var podCIDRs: [String]?
    public var providerID: String?
    public var unschedulable: Bool?
    public var taints: [Taint]?
    public var configSource: JSONValue?
    public var externalID: String?
    public var unknownFields = UnknownFields()

    public init() {}
}

/// Keeps pods off a node unless they tolerate it.
public struct Taint: Codable, Sendable, Hashable {
    public var key: String = ""
    public var value: String?
    public var effect: TaintEffect = .noSchedule
    public var timeAdded: Timestamp?
    public var unknownFields = UnknownFields()

    public init(key: String, value: String? = nil, effect: TaintEffect) {
        self.key = key
        self.value = value
        self.effect = effect
    }
}
