/// A request for a signed certificate (`certificates.k8s.io/v1`): how a node gets its client certificate.
public struct CertificateSigningRequest: KubeObject {
    public static let apiVersion = "certificates.k8s.io/v1"
    public static let kind = "CertificateSigningRequest"

    public var apiVersion: String? = CertificateSigningRequest.apiVersion
    public var kind: String? = CertificateSigningRequest.kind
    public var metadata = ObjectMeta()
    public var spec = CertificateSigningRequestSpec()
    public var status: CertificateSigningRequestStatus?
    public var unknownFields = UnknownFields()

    public init(metadata: ObjectMeta = ObjectMeta(), spec: CertificateSigningRequestSpec) {
        self.metadata = metadata
        self.spec = spec
    }
}

/// The PEM request, the signer, and (filled by the server) who asked.
public struct CertificateSigningRequestSpec: Codable, Sendable, Hashable {
    /// A PEM-encoded PKCS#10 request.
    public var request = Base64Bytes([])
    /// `kubernetes.io/kube-apiserver-client-kubelet` for node client certificates.
    public var signerName: String = ""
    public var expirationSeconds: Int32?
    /// `digital signature`, `key encipherment`, `client auth`, …
    public var usages: [String]?
    public var username: String?
    public var uid: String?
    public var groups: [String]?
    public var extra: [String: [String]]?
    public var unknownFields = UnknownFields()

    public init(request: [UInt8] = [], signerName: String = "", usages: [String]? = nil) {
        self.request = Base64Bytes(request)
        self.signerName = signerName
        self.usages = usages
    }
}

/// Approval conditions and the issued certificate.
public struct CertificateSigningRequestStatus: Codable, Sendable, Hashable {
    public var conditions: [CertificateSigningRequestCondition]?
    /// The PEM-encoded certificate once issued.
    public var certificate: Base64Bytes?
    public var unknownFields = UnknownFields()

    public init() {}
}

/// Approved, Denied or Failed.
public struct CertificateSigningRequestCondition: Codable, Sendable, Hashable {
    public var type: String = ""
    public var status: ConditionStatus = .true
    public var reason: String?
    public var message: String?
    public var lastUpdateTime: Timestamp?
    public var lastTransitionTime: Timestamp?
    public var unknownFields = UnknownFields()

    public init(type: String, status: ConditionStatus = .true, reason: String? = nil, message: String? = nil) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
    }
}
