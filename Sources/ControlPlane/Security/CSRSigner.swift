import FoundationEssentials
import KubeModel
import X509

/// Approves node client and serving certificate requests that Kubernetes (or, for serving
/// certificates, k3s and kubelet-csr-approver) would auto-approve and signs approved requests
/// with the cluster CA (the kube-controller-manager's approver and signer).
public struct CSRSigner: Sendable {
    static let kubeletClientSigner = "kubernetes.io/kube-apiserver-client-kubelet"
    static let allowedUsages: Set = ["digital signature", "key encipherment", "client auth"]
    /// Client certificates last a year unless the request asks for less.
    static let defaultValidity: Int64 = 365 * 86400

    let authority: CertificateAuthority
    let store: ObjectStore
    /// Whether qualifying node requests are approved without a person (`kubectl certificate approve`).
    let autoApprove: Bool
    /// The API server certificate's DNS names and IPv4 addresses, which no node may be given.
    let serverNames: (dnsNames: [String], ipAddresses: [[UInt8]])

    public init(authority: CertificateAuthority, store: ObjectStore, autoApprove: Bool = true,
                serverNames: (dnsNames: [String], ipAddresses: [[UInt8]]) = ([], [])) {
        self.authority = authority
        self.store = store
        self.autoApprove = autoApprove
        self.serverNames = serverNames
    }

    /// Approves the named request if it qualifies and signs it once approved; returns it as stored.
    func process(name: String) throws -> JSONValue {
        // Approving a serving certificate reads the Nodes: decided before the request is locked.
        let servingApproval = try store.get(.certificateSigningRequests, namespace: "", name: name)
            .flatMap { try? KubeJSON.decode(KubeModel.CertificateSigningRequest.self, from: $0) }
            .flatMap { KubeletServingApproval(store: store, reserved: .init(dnsNames: serverNames.dnsNames, ipAddresses: serverNames.ipAddresses)).reason($0) }
        // So is a bootstrap request's node password, against the name's record as it is now.
        let passwordDenial = try store.get(.certificateSigningRequests, namespace: "", name: name)
            .flatMap { try? KubeJSON.decode(KubeModel.CertificateSigningRequest.self, from: $0) }
            .flatMap { try NodePasswords(store: store).denial($0) }
        return try store.update(.certificateSigningRequests, namespace: "", name: name) { current in
            guard var csr = try? KubeJSON.decode(KubeModel.CertificateSigningRequest.self, from: current) else { return nil }
            var status = csr.status ?? CertificateSigningRequestStatus()
            var conditions = status.conditions ?? []
            let decided = conditions.contains { $0.type == "Approved" || $0.type == "Denied" || $0.type == "Failed" }
            var changed = false
            let ended = conditions.contains { $0.type == "Denied" || $0.type == "Failed" }
            if !ended, status.certificate == nil, let refusal = passwordDenial {
                // Whether or not approvals are automatic, and also after a person approved: a
                // takeover is never signed (they delete the node first, as the message says).
                let approvedAlready = conditions.contains { $0.type == "Approved" }
                var denial = CertificateSigningRequestCondition(type: approvedAlready ? "Failed" : "Denied", reason: "NodePasswordMismatch", message: refusal)
                denial.lastUpdateTime = .now()
                denial.lastTransitionTime = .now()
                conditions.append(denial)
                changed = true
            } else if !decided, autoApprove, let reason = autoApprovalReason(csr, servingApproval: servingApproval) {
                var approval = CertificateSigningRequestCondition(type: "Approved", reason: "AutoApproved", message: reason)
                approval.lastUpdateTime = .now()
                approval.lastTransitionTime = .now()
                conditions.append(approval)
                changed = true
            }
            let approved = conditions.contains { $0.type == "Approved" && $0.status == .true }
            let denied = conditions.contains { $0.type == "Denied" || $0.type == "Failed" }
            if approved, !denied, status.certificate == nil,
               csr.spec.signerName == Self.kubeletClientSigner || csr.spec.signerName == KubeletServingApproval.signerName {
                do {
                    status.certificate = Base64Bytes(Array(try sign(csr).utf8))
                } catch {
                    var failure = CertificateSigningRequestCondition(type: "Failed", reason: "SigningError", message: "\(error)")
                    failure.lastUpdateTime = .now()
                    failure.lastTransitionTime = .now()
                    conditions.append(failure)
                }
                changed = true
            }
            guard changed else { return nil }
            status.conditions = conditions
            csr.status = status
            return try KubeJSON.tree(csr)
        }
    }

    /// Why a request may be approved without a person: a node client certificate for
    /// `system:node:<name>` / `system:nodes`, requested with a bootstrap token or by that node.
    /// `servingApproval` is ``KubeletServingApproval``'s verdict for a serving certificate request.
    func autoApprovalReason(_ csr: KubeModel.CertificateSigningRequest, servingApproval: String?) -> String? {
        if csr.spec.signerName == KubeletServingApproval.signerName { return servingApproval }
        guard csr.spec.signerName == Self.kubeletClientSigner,
              let request = try? X509.CertificateSigningRequest(pemEncoded: csr.spec.request.text) else { return nil }
        let (commonName, organizations) = Self.names(request.subject)
        guard let commonName, commonName.hasPrefix(Authorizer.nodeUserPrefix), organizations == [Authorizer.nodesGroup] else { return nil }
        let usages = Set(csr.spec.usages ?? [])
        guard usages.contains("client auth"), usages.isSubset(of: Self.allowedUsages) else { return nil }
        let groups = csr.spec.groups ?? []
        if groups.contains("system:bootstrappers") { return "Auto approving kubelet client certificate after bootstrap token authentication." }
        if csr.spec.username == commonName { return "Auto approving self kubelet client certificate renewal." }
        return nil
    }

    /// Signs the request with the CA after checking its own signature; returns the PEM certificate:
    /// a client certificate, or for `kubernetes.io/kubelet-serving` a serving certificate for the
    /// DNS names and IPs the request asks for.
    func sign(_ csr: KubeModel.CertificateSigningRequest) throws -> String {
        let request = try X509.CertificateSigningRequest(pemEncoded: csr.spec.request.text)
        guard request.publicKey.isValidSignature(request.signature, for: request) else {
            throw APIError.badRequest("the certificate signing request's signature does not match its public key")
        }
        let (commonName, organizations) = Self.names(request.subject)
        let validity = min(Int64(csr.spec.expirationSeconds ?? Int32(Self.defaultValidity)), Self.defaultValidity)
        let serving = csr.spec.signerName == KubeletServingApproval.signerName
        guard let names = serving ? KubeletServingApproval.names(request) : KubeletServingApproval.Names() else {
            throw APIError.badRequest("a kubelet serving certificate may name only DNS names and IP addresses")
        }
        // Both kubelet signers issue only node identities, whoever approved the request
        // (kube's signer refuses the rest: an approved system:masters request stays unsigned).
        if !(commonName ?? "").hasPrefix(Authorizer.nodeUserPrefix) || organizations != [Authorizer.nodesGroup] {
            throw APIError.badRequest("a kubelet \(serving ? "serving" : "client") certificate must be for \(Authorizer.nodeUserPrefix)<node> in \(Authorizer.nodesGroup) only")
        }
        let usages = Set(csr.spec.usages ?? [])
        guard usages.isSubset(of: serving ? KubeletServingApproval.allowedUsages : Self.allowedUsages) else {
            throw APIError.badRequest("usages \(usages.sorted()) are not allowed for \(csr.spec.signerName)")
        }
        let certificate = try authority.issue(
            commonName: commonName ?? "", organizations: organizations, publicKey: request.publicKey,
            dnsNames: names.dnsNames, ipAddresses: names.ipAddresses,
            serverAuth: serving, clientAuth: !serving, validity: TimeInterval(max(600, validity)))
        return try certificate.serializeAsPEM().pemString
    }

    static func names(_ subject: DistinguishedName) -> (commonName: String?, organizations: [String]) {
        var commonName: String?
        var organizations: [String] = []
        for relativeName in subject {
            for attribute in relativeName {
                if attribute.type == .RDNAttributeType.commonName { commonName = String(describing: attribute.value) }
                if attribute.type == .RDNAttributeType.organizationName { organizations.append(String(describing: attribute.value)) }
            }
        }
        return (commonName, organizations)
    }
}
