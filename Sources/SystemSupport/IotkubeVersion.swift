/// Version facts shared by the agent and the server.
public enum IotkubeVersion {
    /// This release of iotkube.
    public static let current = "0.1.0"
    /// The Kubernetes API version whose types and behaviour this release reproduces.
    public static let kubernetesAPI = "v1.30"
}
