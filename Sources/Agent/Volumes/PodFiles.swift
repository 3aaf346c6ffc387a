#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import KubeModel
import OCI
import PodNetwork
import SystemSupport

/// The files the agent provides to every container of a pod, kept in the pod's directory and
/// bind-mounted: /etc/hosts, /etc/resolv.conf, /etc/hostname (not for hostNetwork pods' hostname:
/// theirs is the node's) and each container's termination message file.
public struct PodFiles: Sendable {
    public let podDirectory: String

    public init(podDirectory: String) { self.podDirectory = podDirectory }

    /// Writes the pod's hosts, resolv.conf and hostname files (atomically: a container may be
    /// reading them); returns the warning to report as an event, if any.
    public func write(for pod: Pod, dns: PodDNS, podIPs: [String], nodeHosts: String, nodeHostname: String) throws(PodSetupError) -> String? {
        let resolv = dns.resolvConf(for: pod)
        let hostname = pod.spec?.hostNetwork == true ? nodeHostname : PodDNS.hostname(for: pod)
        do {
            try FileTree.makeDirectories(podDirectory, mode: 0o755)
            // Rewritten only when they change (the pod is set up again every minute; flash wears).
            for (name, text) in [("etc-hosts", dns.hosts(for: pod, podIPs: podIPs, nodeHosts: nodeHosts)), ("resolv.conf", resolv.text), ("hostname", hostname + "\n")] {
                let path = podDirectory + "/" + name
                if FileTree.readText(path) != text { try AtomicFile.write(text, to: path, mode: 0o644) }
            }
        } catch { throw PodSetupError("pod files in \(podDirectory): \(error)") }
        return resolv.warning
    }

    /// Where a container's termination message is written by the container and read back.
    public func terminationMessagePath(container: String) -> String { podDirectory + "/containers/" + container + "/termination-log" }

    /// The bind mounts of the pod files for `container` (its termination log file created empty).
    public func mounts(for container: Container) throws(PodSetupError) -> [RuntimeSpec.Mount] {
        let log = terminationMessagePath(container: container.name)
        do {
            try FileTree.makeDirectories(String(log.dropLast("/termination-log".count)), mode: 0o755)
            if !FileTree.exists(log) { try AtomicFile.write([], to: log, mode: 0o666) }
            chmod(log, 0o666)   // whatever user the container runs as writes it
        } catch { throw PodSetupError("container \(container.name): termination log: \(error)") }
        let destination = container.terminationMessagePath.flatMap { $0.isEmpty ? nil : $0 } ?? "/dev/termination-log"
        guard destination.hasPrefix("/") else { throw PodSetupError("container \(container.name): terminationMessagePath \"\(destination)\" is not absolute") }
        func bind(_ source: String, _ target: String, readOnly: Bool) -> RuntimeSpec.Mount {
            RuntimeSpec.Mount(destination: target, type: "bind", source: source, options: ["rbind", "rprivate", readOnly ? "ro" : "rw"])
        }
        return [
            bind(podDirectory + "/etc-hosts", "/etc/hosts", readOnly: false),
            bind(podDirectory + "/resolv.conf", "/etc/resolv.conf", readOnly: false),
            bind(podDirectory + "/hostname", "/etc/hostname", readOnly: false),
            bind(log, destination, readOnly: false),
        ]
    }
}
