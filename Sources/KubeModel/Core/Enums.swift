/// When the kubelet restarts a pod's containers.
public enum RestartPolicy: String, KubeEnum {
    case always = "Always"
    case onFailure = "OnFailure"
    case never = "Never"
}

/// Per-container restart policy; only `Always` exists (sidecar init containers).
public enum ContainerRestartPolicy: String, KubeEnum {
    case always = "Always"
}

/// When to pull a container image.
public enum PullPolicy: String, KubeEnum {
    case always = "Always"
    case ifNotPresent = "IfNotPresent"
    case never = "Never"
}

/// How a pod's /etc/resolv.conf is built.
public enum DNSPolicy: String, KubeEnum {
    case clusterFirst = "ClusterFirst"
    case clusterFirstWithHostNet = "ClusterFirstWithHostNet"
    case `default` = "Default"
    case none = "None"
}

/// A network protocol for a port.
public enum NetworkProtocol: String, KubeEnum {
    case tcp = "TCP"
    case udp = "UDP"
    case sctp = "SCTP"
}

/// The scheme of an HTTP probe or hook.
public enum URIScheme: String, KubeEnum {
    case http = "HTTP"
    case https = "HTTPS"
}

/// Where a terminated container's message comes from.
public enum TerminationMessagePolicy: String, KubeEnum {
    case file = "File"
    case fallbackToLogsOnError = "FallbackToLogsOnError"
}

/// The lifecycle phase of a pod.
public enum PodPhase: String, KubeEnum {
    case pending = "Pending"
    case running = "Running"
    case succeeded = "Succeeded"
    case failed = "Failed"
    case unknown = "Unknown"
}

/// The value of a condition.
public enum ConditionStatus: String, KubeEnum {
    case `true` = "True"
    case `false` = "False"
    case unknown = "Unknown"
}

/// A pod's quality-of-service class.
public enum PodQOSClass: String, KubeEnum {
    case guaranteed = "Guaranteed"
    case burstable = "Burstable"
    case bestEffort = "BestEffort"
}

/// What kind of path a hostPath volume expects.
public enum HostPathType: String, KubeEnum {
    case unset = ""
    case directoryOrCreate = "DirectoryOrCreate"
    case directory = "Directory"
    case fileOrCreate = "FileOrCreate"
    case file = "File"
    case socket = "Socket"
    case charDevice = "CharDevice"
    case blockDevice = "BlockDevice"
}

/// The backing store of an emptyDir volume.
public enum StorageMedium: String, KubeEnum {
    case `default` = ""
    case memory = "Memory"
    case hugePages = "HugePages"
}

/// Mount propagation of a volume mount.
public enum MountPropagationMode: String, KubeEnum {
    case none = "None"
    case hostToContainer = "HostToContainer"
    case bidirectional = "Bidirectional"
}

/// How a toleration matches a taint.
public enum TolerationOperator: String, KubeEnum {
    case exists = "Exists"
    case equal = "Equal"
}

/// What a taint does to pods that do not tolerate it; empty in a toleration matches all.
public enum TaintEffect: String, KubeEnum {
    case all = ""
    case noSchedule = "NoSchedule"
    case preferNoSchedule = "PreferNoSchedule"
    case noExecute = "NoExecute"
}

/// The kind of seccomp (or AppArmor) profile.
public enum ProfileType: String, KubeEnum {
    case runtimeDefault = "RuntimeDefault"
    case unconfined = "Unconfined"
    case localhost = "Localhost"
}
