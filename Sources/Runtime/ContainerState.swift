import KubeCoding
import OCI
import SystemSupport

/// The OCI lifecycle states.
public enum ContainerStatus: String, Codable, Sendable {
    case creating, created, running, stopped
}

/// What the runtime keeps per container in `<root>/<id>/state.json` (written atomically at
/// create and start; the monitor writes `exit.json` when the process ends).
public struct ContainerRecord: Codable, Sendable, Hashable {
    public var ociVersion: String
    public var id: String
    public var bundle: String
    public var pid: Int32
    /// Start time of the process in clock ticks since boot (/proc/<pid>/stat field 22), so a
    /// reused pid is never mistaken for the container.
    public var processStartTicks: UInt64
    public var monitorPid: Int32
    /// Start time of the monitor in clock ticks since boot (absent in records from older agents).
    public var monitorStartTicks: UInt64?
    public var cgroupPath: String
    public var annotations: [String: String]?
    public var createdAt: Int64
    public var startedAt: Int64?
    /// The cgroup.procs files the process was placed through (exec joins the same).
    public var cgroupProcs: [String]?
    /// The systemd scope holding the container (its cgroupsPath was `slice:prefix:name`).
    public var systemdScope: String?
}

/// How the process ended, as the monitor recorded it.
public struct ContainerExit: Codable, Sendable, Hashable {
    public var pid: Int32
    public var exitCode: Int32
    public var signal: Int32
    public var finishedAt: Int64
    /// Set when the process could not be executed (exit code 127 or 126).
    public var error: String
    /// Set by the runtime from the cgroup's OOM-kill counter.
    public var oomKilled: Bool?
    /// The container cgroup's OOM kills as the monitor last read them (cgroup v2), kept because
    /// the cgroup may be gone by the time the exit is read (systemd removes an empty scope's).
    public var oomKills: Int64?
}

/// The OCI `state` output.
public struct OCIState: Codable, Sendable, Hashable {
    public var ociVersion: String
    public var id: String
    public var status: ContainerStatus
    public var pid: Int32?
    public var bundle: String
    public var annotations: [String: String]?
}
