import Crypto
import FoundationEssentials
import KubeModel
import HTTPServing
import X509

/// Node passwords, as k3s keeps them: the first board that joins under a node name with a
/// bootstrap token records the SHA-256 of its password in the Secret
/// `kube-system/<node>.node-password.iotkube`; a later bootstrap request for that name's client
/// certificate must carry the same password or is denied. Whoever holds a join token can still
/// join new boards, but cannot take over another board's identity (its tunnel and the exec,
/// attach and port-forward streams of its pods). The Secret goes with the Node.
struct NodePasswords: Sendable {
    let store: ObjectStore

    /// The annotation the board sends its password in (never stored).
    static let passwordAnnotation = "iotkube.io/node-password"
    /// The server's verdict on the request, set by the server alone.
    static let checkAnnotation = "iotkube.io/node-password-check"

    enum Verdict: String {
        /// The password matched the recorded one.
        case matched
        /// The first join under this name: its password is recorded now.
        case recorded
        /// Neither a password nor a record (a board without passwords, which stays unprotected).
        case unrecorded
        /// A record exists and the request's password is missing or another one.
        case mismatched
    }

    static func secretName(node: String) -> String { "\(node).node-password.iotkube" }

    /// Checks a CSR about to be created: the password annotation is taken off, and for a
    /// bootstrap request for a node client certificate the verdict is set in its place.
    func admit(_ tree: inout JSONValue, identity: RequestIdentity) throws {
        let password = tree.string(at: ["metadata", "annotations", Self.passwordAnnotation])
        tree.set(["metadata", "annotations", Self.passwordAnnotation], nil)
        tree.set(["metadata", "annotations", Self.checkAnnotation], nil)
        if case .object(let annotations)? = tree[path: ["metadata", "annotations"]], annotations.isEmpty { tree.set(["metadata", "annotations"], nil) }
        guard identity.groups.contains("system:bootstrappers"), let node = Self.requestedNode(tree) else { return }
        let verdict = try check(node: node, password: password)
        tree.set(["metadata", "annotations", Self.checkAnnotation], .string(verdict.rawValue))
    }

    /// The node a client certificate request names (`system:node:<name>`), if it is one.
    static func requestedNode(_ tree: JSONValue) -> String? {
        guard let request = try? KubeJSON.decode(KubeModel.CertificateSigningRequest.self, from: tree),
              let parsed = try? X509.CertificateSigningRequest(pemEncoded: request.spec.request.text),
              let commonName = CSRSigner.names(parsed.subject).commonName, commonName.hasPrefix(Authorizer.nodeUserPrefix) else { return nil }
        let node = String(commonName.dropFirst(Authorizer.nodeUserPrefix.count))
        return node.isEmpty || node.utf8.count > 253 ? nil : node
    }

    func check(node: String, password: String?) throws -> Verdict {
        let name = Self.secretName(node: node)
        let presented = password.flatMap { $0.isEmpty || $0.utf8.count > 256 ? nil : Array(SHA256.hash(data: Array($0.utf8))) }
        for _ in 0..<2 {
            if let tree = try store.get(.secrets, namespace: "kube-system", name: name) {
                let stored = (try? KubeJSON.decode(Secret.self, from: tree))?.data?["hash"]?.bytes ?? []
                guard let presented, stored.count == presented.count else { return .mismatched }
                // Constant time: the comparison says nothing about how much of it matched.
                return zip(stored, presented).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0 ? .matched : .mismatched
            }
            guard let presented else { return .unrecorded }
            let secret = Secret(metadata: ObjectMeta(name: name, namespace: "kube-system", labels: ["iotkube.io/node-password": node]),
                                data: ["hash": Base64Bytes(presented)], type: "iotkube.io/node-password")
            do {
                _ = try store.create(.secrets, namespace: "kube-system", name: name, object: try KubeJSON.tree(secret))
                return .recorded
            } catch let error as APIError where error.code == 409 {
                continue  // another join recorded one meanwhile: compare with it
            }
        }
        return .mismatched
    }

    /// Why a bootstrap request is denied (nil: not for its password).
    static func denial(_ csr: KubeModel.CertificateSigningRequest) -> String? {
        guard csr.metadata.annotations?[checkAnnotation] == Verdict.mismatched.rawValue else { return nil }
        let node = (try? X509.CertificateSigningRequest(pemEncoded: csr.spec.request.text)).flatMap { CSRSigner.names($0.subject).commonName }
            .map { String($0.dropFirst(Authorizer.nodeUserPrefix.count)) } ?? "?"
        return "node \"\(node)\" was joined by another board (its node password differs or is missing). For a board that lost its password, "
            + "or a new board taking the name: delete the node (`kubectl delete node \(node)`, which also removes its password; without a Node, "
            + "`kubectl -n kube-system delete secret \(secretName(node: node))`), then join again"
    }
}
