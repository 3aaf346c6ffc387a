import Crypto
import FoundationEssentials
import HTTPServing
import KubeModel
import X509

/// Node passwords, as k3s keeps them: the SHA-256 of a board's password is recorded for its
/// node name in the Secret `kube-system/<node>.node-password.iotkube` (by its first bootstrap
/// join, or by its own certificate renewal for boards that joined before passwords existed); a
/// bootstrap request for that name's client certificate must carry the same password or is
/// denied, also when approved by hand. A bootstrap request for a name whose Node exists but has
/// no record is denied too (the name is taken). Whoever holds a join token can still join new
/// boards, but cannot take over another board's identity (its tunnel and its pods' exec,
/// attach and port-forward streams). The Secret goes with the Node.
struct NodePasswords: Sendable {
    let store: ObjectStore

    /// The annotation the board sends its password in (never stored).
    static let passwordAnnotation = "iotkube.io/node-password"
    /// The SHA-256 (hex) of the password a request presented, set by the server alone.
    static let hashAnnotation = "iotkube.io/node-password-hash"
    /// The verdict when the request was made (for people; approval checks again), server-set.
    static let checkAnnotation = "iotkube.io/node-password-check"

    static func secretName(node: String) -> String { "\(node).node-password.iotkube" }

    /// Takes the password off a CSR about to be created (and any annotation only the server
    /// sets); returns it.
    static func takePassword(_ tree: inout JSONValue) -> String? {
        let password = tree.string(at: ["metadata", "annotations", passwordAnnotation])
        for annotation in [passwordAnnotation, hashAnnotation, checkAnnotation] { tree.set(["metadata", "annotations", annotation], nil) }
        if case .object(let annotations)? = tree[path: ["metadata", "annotations"]], annotations.isEmpty { tree.set(["metadata", "annotations"], nil) }
        return password
    }

    /// For a validated CSR about to be stored: a bootstrap request for a node client
    /// certificate gets the hash of its password and the verdict; a node renewing its own
    /// certificate records its password if its name has none yet. Records nothing for
    /// anything else (a dry run never gets here).
    func admit(_ tree: inout JSONValue, password: String?, identity: RequestIdentity) throws {
        guard let node = Self.requestedNode(tree) else { return }
        let presented = password.flatMap { $0.isEmpty || $0.utf8.count > 256 ? nil : Array(SHA256.hash(data: Array($0.utf8))) }
        if identity.groups.contains("system:bootstrappers") {
            if let presented { tree.set(["metadata", "annotations", Self.hashAnnotation], .string(Self.hex(presented))) }
            let verdict = try check(node: node, presented: presented, record: true)
            tree.set(["metadata", "annotations", Self.checkAnnotation], .string(verdict))
        } else if identity.user == Authorizer.nodeUserPrefix + node, let presented {
            // The node itself (its certificate): its password is recorded if its name has none.
            _ = try check(node: node, presented: presented, record: true, nodeVouched: true)
        }
    }

    /// Why a request must be denied for its password now (nil: it need not be): checked when
    /// it is created and again before any approval, so a request made before its name's record
    /// existed cannot be approved after.
    func denial(_ csr: KubeModel.CertificateSigningRequest) throws -> String? {
        guard (csr.spec.groups ?? []).contains("system:bootstrappers"), let tree = try? KubeJSON.tree(csr), let node = Self.requestedNode(tree) else { return nil }
        let presented = csr.metadata.annotations?[Self.hashAnnotation].flatMap(Self.bytes(hex:))
        guard try check(node: node, presented: presented, record: false) == "mismatched" else { return nil }
        return "node \"\(node)\" was joined by another board (its node password differs or is missing). For a board that lost its password, "
            + "or a new board taking the name: delete the node (`kubectl delete node \(node)`, which also removes its password; without a Node, "
            + "`kubectl -n kube-system delete secret \(Self.secretName(node: node))`), then join again"
    }

    /// The node a kubelet client certificate request names (`system:node:<name>` in
    /// `system:nodes`, the kubelet client signer), if it is one.
    static func requestedNode(_ tree: JSONValue) -> String? {
        guard let request = try? KubeJSON.decode(KubeModel.CertificateSigningRequest.self, from: tree),
              request.spec.signerName == CSRSigner.kubeletClientSigner,
              let parsed = try? X509.CertificateSigningRequest(pemEncoded: request.spec.request.text) else { return nil }
        let (commonName, organizations) = CSRSigner.names(parsed.subject)
        guard let commonName, commonName.hasPrefix(Authorizer.nodeUserPrefix), organizations == [Authorizer.nodesGroup] else { return nil }
        let node = String(commonName.dropFirst(Authorizer.nodeUserPrefix.count))
        return node.isEmpty || node.utf8.count > 253 ? nil : node
    }

    /// "matched", "recorded" (with `record`), "unrecorded" (no record, no Node, no password) or
    /// "mismatched" (a record the password does not match, or a Node of that name without one).
    /// `nodeVouched`: the node itself asks (its own certificate), so its existing Node does not
    /// make the name taken.
    func check(node: String, presented: [UInt8]?, record: Bool, nodeVouched: Bool = false) throws -> String {
        let name = Self.secretName(node: node)
        for _ in 0..<2 {
            if let tree = try store.get(.secrets, namespace: "kube-system", name: name) {
                let stored = (try? KubeJSON.decode(Secret.self, from: tree))?.data?["hash"]?.bytes ?? []
                guard let presented, stored.count == presented.count else { return "mismatched" }
                // Constant time: the comparison says nothing about how much of it matched.
                return zip(stored, presented).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0 ? "matched" : "mismatched"
            }
            // A Node without a record (joined before passwords, or by hand) is taken: its own
            // renewal records it; a bootstrap join cannot claim it.
            if !nodeVouched, try store.get(.nodes, namespace: "", name: node) != nil { return "mismatched" }
            guard let presented else { return "unrecorded" }
            guard record else { return "unrecorded" }
            let secret = Secret(metadata: ObjectMeta(name: name, namespace: "kube-system", labels: ["iotkube.io/node-password": node]),
                                data: ["hash": Base64Bytes(presented)], type: "iotkube.io/node-password")
            do {
                _ = try store.create(.secrets, namespace: "kube-system", name: name, object: try KubeJSON.tree(secret))
                return "recorded"
            } catch let error as APIError where error.code == 409 {
                continue  // another join recorded one meanwhile: compare with it
            }
        }
        return "mismatched"
    }

    /// Removes a deleted Node's record (its name is free again).
    func forget(node: String) {
        _ = try? store.delete(.secrets, namespace: "kube-system", name: Self.secretName(node: node))
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0xF)]] }, as: UTF8.self)
    }

    static func bytes(hex: String) -> [UInt8]? {
        let text = Array(hex.utf8)
        guard text.count == 64 else { return nil }
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: c - 0x30
            case 0x61...0x66: c - 0x61 + 10
            default: nil
            }
        }
        var bytes: [UInt8] = []
        for index in stride(from: 0, to: 64, by: 2) {
            guard let high = value(text[index]), let low = value(text[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }
}
