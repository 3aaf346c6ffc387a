import KubeModel

/// One run of one container as its probes reach it. A restart is a new run and a new target.
struct ProbeTarget: Sendable {
    /// The runtime's ID of the run.
    var containerID: String
    var container: Container
    /// Where tcpSocket, httpGet and grpc probes connect unless they name a host: the pod's IP,
    /// or 127.0.0.1 for a host-network pod.
    var address: String
    /// The environment and user exec probes run with (nil when the run's spec was not readable).
    var exec: ContainerStopper.HookContext?
    /// When the run started (seconds since the epoch): the initial delay counts from here.
    var startedAt: Int64
}
