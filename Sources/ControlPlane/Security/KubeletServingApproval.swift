import KubeModel
import SwiftASN1
import X509

/// Automatic approval of an agent's serving certificate request (signer
/// `kubernetes.io/kubelet-serving`, as the kubelet's `serverTLSBootstrap` sends), by the rules
/// of k3s and kubelet-csr-approver: asked by the node itself, for `system:node:<name>` in
/// `system:nodes`, server-auth usages only, and names that are that node's own — its name or
/// Hostname addresses and the IPs its Node lists, none of them another node's address.
struct KubeletServingApproval {
    static let signerName = "kubernetes.io/kubelet-serving"
    static let allowedUsages: Set = ["digital signature", "key encipherment", "server auth"]

    let store: ObjectStore
    /// Names no node's serving certificate may carry: the API server's own (its certificate's
    /// SANs; the same CA signs both, so a node holding one could pose as the API server).
    var reserved = Names()

    /// DNS names that always belong to the control plane, and loopback/unspecified IPs.
    static let reservedDNSNames: Set = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "iotkube-server"]
    static func isReservedIP(_ bytes: [UInt8]) -> Bool { bytes.first == 127 || bytes.first == 0 || bytes == [255, 255, 255, 255] }

    /// The names a serving certificate request asks for.
    struct Names: Equatable {
        var dnsNames: [String] = []
        var ipAddresses: [[UInt8]] = []
    }

    /// The DNS and IP SANs of a request; nil when it asks for any other kind of name.
    static func names(_ request: X509.CertificateSigningRequest) -> Names? {
        guard let extensions = try? request.attributes.extensionRequest?.extensions,
              let alternatives = try? extensions.subjectAlternativeNames else { return Names() }
        var names = Names()
        for name in alternatives {
            switch name {
            case .dnsName(let text): names.dnsNames.append(text)
            case .ipAddress(let bytes): names.ipAddresses.append(Array(bytes.bytes))
            default: return nil
            }
        }
        return names
    }

    /// Why the request may be approved without a person, or nil.
    func reason(_ csr: KubeModel.CertificateSigningRequest) -> String? {
        guard csr.spec.signerName == Self.signerName,
              let request = try? X509.CertificateSigningRequest(pemEncoded: csr.spec.request.text) else { return nil }
        let (commonName, organizations) = CSRSigner.names(request.subject)
        guard let commonName, commonName.hasPrefix(Authorizer.nodeUserPrefix), organizations == [Authorizer.nodesGroup],
              csr.spec.username == commonName, (csr.spec.groups ?? []).contains(Authorizer.nodesGroup) else { return nil }
        let usages = Set(csr.spec.usages ?? [])
        guard usages.contains("server auth"), usages.isSubset(of: Self.allowedUsages) else { return nil }
        let node = String(commonName.dropFirst(Authorizer.nodeUserPrefix.count))
        guard let names = Self.names(request), !(names.dnsNames.isEmpty && names.ipAddresses.isEmpty),
              let owned = try? ownedNames(of: node) else { return nil }
        guard names.dnsNames.allSatisfy(owned.dnsNames.contains), names.ipAddresses.allSatisfy(owned.ipAddresses.contains) else { return nil }
        guard !names.dnsNames.contains(where: isReserved), !names.ipAddresses.contains(where: isReserved) else { return nil }
        return "Auto approving kubelet serving certificate: requested by \(commonName) for its own names and addresses."
    }

    /// Whether a DNS name is the control plane's (its own, or under `kubernetes.default.svc`).
    func isReserved(_ name: String) -> Bool {
        let lowered = name.lowercased()
        return Self.reservedDNSNames.contains(lowered) || lowered.hasPrefix("kubernetes.default.svc.")
            || reserved.dnsNames.contains { $0.lowercased() == lowered }
    }

    /// Whether an IP is the API server's or loopback/unspecified.
    func isReserved(_ bytes: [UInt8]) -> Bool { Self.isReservedIP(bytes) || reserved.ipAddresses.contains(bytes) }

    /// The node's name and Hostname addresses equal to it, and its IP addresses that no other
    /// node lists (a node writes its own addresses: other Hostname values are not proof).
    func ownedNames(of node: String) throws -> Names? {
        guard let tree = try store.get(.nodes, namespace: "", name: node), let own = try? KubeJSON.decode(Node.self, from: tree) else { return nil }
        var others: Set<[UInt8]> = []
        for other in try store.list(.nodes, namespace: "").items where other.string(at: ["metadata", "name"]) != node {
            guard let decoded = try? KubeJSON.decode(Node.self, from: other) else { continue }
            for address in decoded.status?.addresses ?? [] { if let bytes = ipBytes(address.address) { others.insert(bytes) } }
        }
        var names = Names(dnsNames: [node])
        for address in own.status?.addresses ?? [] {
            if address.type == "InternalIP" || address.type == "ExternalIP", let bytes = ipBytes(address.address), !others.contains(bytes) {
                names.ipAddresses.append(bytes)
            }
        }
        return names
    }

    /// The bytes of an IPv4 literal, as they appear in a certificate SAN (agents put IPv4 only).
    func ipBytes(_ text: String) -> [UInt8]? { ipv4Bytes(text) }
}
