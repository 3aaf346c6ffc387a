import Crypto
import FoundationEssentials
import KubeModel
import HTTPServing

/// Bootstrap tokens as Kubernetes keeps them: `bootstrap.kubernetes.io/token` Secrets named
/// `bootstrap-token-<id>` in kube-system, with an expiry and usages.
public enum BootstrapTokens {
    public static let secretType = "bootstrap.kubernetes.io/token"
    /// The group every bootstrap token authenticates as, plus the one iotkube adds for nodes.
    public static let groups = ["system:bootstrappers", "system:bootstrappers:iotkube:default-node-token"]

    /// Stores a new token valid for `ttlSeconds` (0: never expires).
    public static func create(_ token: BootstrapToken, ttlSeconds: Int64, description: String, in store: ObjectStore) throws {
        var data: [String: Base64Bytes] = [
            "token-id": Base64Bytes(token.id), "token-secret": Base64Bytes(token.secret),
            "usage-bootstrap-authentication": Base64Bytes("true"), "usage-bootstrap-signing": Base64Bytes("true"),
            "auth-extra-groups": Base64Bytes(groups[1]), "description": Base64Bytes(description),
        ]
        if ttlSeconds > 0 { data["expiration"] = Base64Bytes(Timestamp.now().adding(seconds: ttlSeconds).description) }
        var secret = Secret(metadata: ObjectMeta(name: token.secretName, namespace: "kube-system"), data: data, type: secretType)
        secret.setTypeMeta()
        _ = try store.create(.secrets, namespace: "kube-system", name: token.secretName, object: try KubeJSON.tree(secret))
    }

    /// The identity of a valid, unexpired bootstrap token; nil when it is unknown, wrong or expired.
    static func authenticate(_ text: String, store: ObjectStore) -> RequestIdentity? {
        guard let token = BootstrapToken(text),
              let tree = try? store.get(.secrets, namespace: "kube-system", name: token.secretName),
              let secret = try? KubeJSON.decode(Secret.self, from: tree), secret.type == secretType,
              let data = secret.data, data["usage-bootstrap-authentication"]?.text == "true",
              let stored = data["token-secret"]?.bytes,
              Base64URL.constantTimeEqual(stored, Array(token.secret.utf8)) else { return nil }
        if let expiration = data["expiration"]?.text {
            guard let deadline = try? Timestamp(rfc3339: expiration), Timestamp.now() < deadline else { return nil }
        }
        var groups = ["system:bootstrappers"]
        for extra in (data["auth-extra-groups"]?.text ?? "").split(separator: ",") where extra.hasPrefix("system:bootstrappers:") {
            groups.append(String(extra))
        }
        return RequestIdentity(user: "system:bootstrap:\(token.id)", groups: groups + ["system:authenticated"])
    }

    /// Publishes `cluster-info` in kube-public: the cluster's kubeconfig (server and CA, no
    /// credentials) signed with every signing-enabled bootstrap token (detached HS256 JWS under
    /// `jws-kubeconfig-<id>`), as kubeadm does, so an agent can verify discovery with its token.
    public static func publishClusterInfo(server: String, caPEM: String, tokens: [BootstrapToken], in store: ObjectStore) throws {
        let kubeconfig = clusterInfoKubeconfig(server: server, caPEM: caPEM)
        var data = ["kubeconfig": kubeconfig]
        for token in tokens { data["jws-kubeconfig-\(token.id)"] = detachedJWS(payload: kubeconfig, token: token) }
        var configMap = ConfigMap(metadata: ObjectMeta(name: "cluster-info", namespace: "kube-public"), data: data)
        configMap.setTypeMeta()
        let tree = try KubeJSON.tree(configMap)
        if try store.get(.configMaps, namespace: "kube-public", name: "cluster-info") == nil {
            _ = try store.create(.configMaps, namespace: "kube-public", name: "cluster-info", object: tree)
        } else {
            try store.update(.configMaps, namespace: "kube-public", name: "cluster-info") { current in
                var next = current
                next.set(["data"], tree["data"])
                return next
            }
        }
    }

    /// cluster-info's kubeconfig: the server and its CA, no credentials (kubeadm's layout).
    static func clusterInfoKubeconfig(server: String, caPEM: String) -> String {
        """
        apiVersion: v1
        kind: Config
        clusters:
        - name: ""
          cluster:
            certificate-authority-data: \(Data(caPEM.utf8).base64EncodedString())
            server: \(server)
        contexts: null
        current-context: ""
        preferences: {}
        users: null

        """
    }

    /// `<header>..<signature>`: HS256 over the payload keyed with the token, payload left out.
    static func detachedJWS(payload: String, token: BootstrapToken) -> String {
        let header = Base64URL.encode(Array(#"{"alg":"HS256","kid":"\#(token.id)"}"#.utf8))
        let signingInput = header + "." + Base64URL.encode(Array(payload.utf8))
        let key = SymmetricKey(data: Array(token.description.utf8))
        let signature = HMAC<SHA256>.authenticationCode(for: Array(signingInput.utf8), using: key)
        return header + ".." + Base64URL.encode(Array(signature))
    }

    /// Every token in the store that may sign cluster-info.
    static func signingTokens(in store: ObjectStore) throws -> [BootstrapToken] {
        try store.list(.secrets, namespace: "kube-system").items.compactMap { tree in
            guard let secret = try? KubeJSON.decode(Secret.self, from: tree), secret.type == secretType,
                  secret.data?["usage-bootstrap-signing"]?.text == "true",
                  let id = secret.data?["token-id"]?.text, let value = secret.data?["token-secret"]?.text else { return nil }
            if let expiration = secret.data?["expiration"]?.text, let deadline = try? Timestamp(rfc3339: expiration), deadline < Timestamp.now() {
                return nil
            }
            return BootstrapToken(id: id, secret: value)
        }
    }
}
