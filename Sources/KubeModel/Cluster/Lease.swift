/// A lease (`coordination.k8s.io/v1`): the node heartbeat the agent renews.
public struct Lease: KubeObject {
    public static let apiVersion = "coordination.k8s.io/v1"
    public static let kind = "Lease"

    public var apiVersion: String? = Lease.apiVersion
    public var kind: String? = Lease.kind
    public var metadata = ObjectMeta()
    public var spec: LeaseSpec?
    public var unknownFields = UnknownFields()

    public init(metadata: ObjectMeta = ObjectMeta(), spec: LeaseSpec? = nil) {
        self.metadata = metadata
        self.spec = spec
    }
}

/// Who holds a lease, for how long, and when it was last renewed.
public struct LeaseSpec: Codable, Sendable, Hashable {
    public var holderIdentity: String?
    public var leaseDurationSeconds: Int32?
    public var acquireTime: MicroTimestamp?
    public var renewTime: MicroTimestamp?
    public var leaseTransitions: Int32?
    public var strategy: String?
    public var preferredHolder: String?
    public var unknownFields = UnknownFields()

    public init(holderIdentity: String? = nil, leaseDurationSeconds: Int32? = nil, renewTime: MicroTimestamp? = nil) {
        self.holderIdentity = holderIdentity
        self.leaseDurationSeconds = leaseDurationSeconds
        self.renewTime = renewTime
    }
}
