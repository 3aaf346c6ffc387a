import ImageStore
import SystemSupport

extension AgentConfiguration {
    /// The default credentials file for registries (Docker config.json format).
    public static let defaultRegistryAuthFile = "/etc/iotkube/registry-auth.json"

    /// How this agent reaches registries: insecure hosts, mirrors, CA files and the credentials
    /// from `registryAuthFile` (missing file: no credentials; a malformed one is an error).
    public func registryConfiguration() throws -> RegistryConfiguration {
        var registry = RegistryConfiguration()
        registry.insecureRegistries = Set(insecureRegistries ?? [])
        registry.mirrors = registryMirrors ?? [:]
        registry.certificateAuthorityFiles = registryCAFiles ?? [:]
        let authFile = registryAuthFile ?? Self.defaultRegistryAuthFile
        if let bytes = try AtomicFile.read(authFile) {
            registry.credentials = try RegistryCredentials(dockerConfigJSON: bytes, source: authFile)
        }
        return registry
    }
}
