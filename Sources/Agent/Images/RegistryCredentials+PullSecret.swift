import ImageStore
import KubeModel

extension RegistryCredentials {
    /// Credentials from an `imagePullSecrets` Secret: type `kubernetes.io/dockerconfigjson`
    /// (key `.dockerconfigjson`) or the older `kubernetes.io/dockercfg` (key `.dockercfg`).
    public init(pullSecret secret: Secret) throws(ImageStoreError) {
        let name = "secret \(secret.metadata.namespace ?? "default")/\(secret.metadata.name ?? "")"
        switch secret.type {
        case "kubernetes.io/dockerconfigjson":
            guard let bytes = secret.data?[".dockerconfigjson"]?.bytes else { throw .init(.invalidContent, "\(name) has no .dockerconfigjson key") }
            try self.init(dockerConfigJSON: bytes, source: name)
        case "kubernetes.io/dockercfg":
            guard let bytes = secret.data?[".dockercfg"]?.bytes else { throw .init(.invalidContent, "\(name) has no .dockercfg key") }
            try self.init(dockerConfigJSON: bytes, source: name)
        default:
            throw .init(.invalidContent, "\(name) is of type \(secret.type ?? "Opaque"), not kubernetes.io/dockerconfigjson")
        }
    }
}
