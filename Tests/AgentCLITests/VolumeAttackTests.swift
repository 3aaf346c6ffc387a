import Foundation
import Agent
import KubeModel
import OCI
import IotkubeTestSupport
import Testing

/// A container attacking the node through its volumes: link text it planted, directories it
/// swapped for symlinks between the agent's check and the mount.
@Suite(.ownThread) struct VolumeWriterAttackTests {
    /// A container that could write its configMap volume replaced `..data` with a link that
    /// climbs to a host directory; the next update used to remove that directory as root.
    @Test func aPlantedDataLinkIsNeitherFollowedNorRemoved() throws {
        let base = NSTemporaryDirectory() + "iotkube-datalink-\(UUID().uuidString)"
        let volume = base + "/pod/volumes/settings", victim = base + "/host-data"
        try FileManager.default.createDirectory(atPath: victim, withIntermediateDirectories: true)
        try "precious".write(toFile: victim + "/keep", atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let writer = VolumeDirectoryWriter(directory: volume)
        #expect(try writer.write(["level": .init(Array("info".utf8))]))

        let climb = String(repeating: "../", count: 40) + victim.dropFirst()
        try FileManager.default.removeItem(atPath: volume + "/..data")
        try FileManager.default.createSymbolicLink(atPath: volume + "/..data", withDestinationPath: climb)
        #expect(try writer.write(["level": .init(Array("debug".utf8))]))
        #expect(try String(contentsOfFile: victim + "/keep", encoding: .utf8) == "precious", "the host directory the link named is untouched")
        #expect(try String(contentsOfFile: volume + "/level", encoding: .utf8) == "debug")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: volume + "/..data").hasPrefix("..1"))

        // A FIFO where a timestamped directory's file should be is skipped, never opened.
        let published = try FileManager.default.destinationOfSymbolicLink(atPath: volume + "/..data")
        try FileManager.default.removeItem(atPath: volume + "/" + published + "/level")
        #expect(mkfifo(volume + "/" + published + "/level", 0o644) == 0)
        #expect(try writer.write(["level": .init(Array("debug".utf8))]), "rewritten, without blocking on the FIFO")
        #expect(try String(contentsOfFile: volume + "/level", encoding: .utf8) == "debug")
    }
}

/// The same attacks with real containers: what the container can do, and what the agent mounts.
@Suite(.ownThread, .enabled(if: getuid() == 0 && toolAvailable("busybox"), "needs root (mounts, namespaces) and busybox-static"))
struct VolumeMountAttackTests {
    let agent = ContainerFixture.agent

    func run(_ pod: Pod, _ container: Container, mounts: [RuntimeSpec.Mount], script: String, base: String) throws -> String {
        let rootfs = base + "/rootfs"
        if !FileManager.default.fileExists(atPath: rootfs) {
            try ContainerFixture.busyboxRoot(at: rootfs, applets: ["sh", "cat", "ls", "ln", "echo", "mkdir"])
        }
        let process = ContainerProcess(args: ["sh", "-c", script], env: ["PATH=/bin"], workingDirectory: "/")
        var pod = pod
        pod.spec?.hostNetwork = true
        let spec = try ContainerSpecBuilder.build(ContainerSpecBuilder.Input(
            pod: pod, container: container, process: process, imageUser: nil, rootfs: rootfs, sandbox: nil,
            cgroupsPath: "/iotkube-test/volattack-\(UUID().uuidString)", mounts: mounts, seccompProfileRoot: base, nodeMemoryCapacity: 1 << 30))
        let bundle = try ContainerFixture.bundle(spec, in: base)
        let result = try ServerProcess.run(agent, ["runtime", "--root", base + "/state", "run", "--bundle", bundle, "attack-\(UUID().uuidString.prefix(8))"])
        return result.output
    }

    /// A pod whose container mounts `subPath` of an emptyDir named "shared" at /data.
    static func sharedVolumePod(_ name: String, subPath: String) -> (Pod, Container) {
        var container = Container(name: "app", image: "busybox")
        container.volumeMounts = [VolumeMount(name: "shared", mountPath: "/data", subPath: subPath)]
        var pod = Pod(metadata: ObjectMeta(name: name, namespace: "edge"), spec: PodSpec(containers: [container]))
        pod.metadata.uid = name + "-1"
        var shared = Volume(name: "shared")
        shared.emptyDir = EmptyDirVolumeSource()
        pod.spec?.volumes = [shared]
        return (pod, container)
    }

    /// configMap volumes are read-only even when the pod asks for a writable mount.
    @Test func aContainerCannotRewriteItsConfigMapVolume() throws {
        let base = ContainerFixture.base("cmro")
        defer { try? FileManager.default.removeItem(atPath: base) }
        var container = Container(name: "app", image: "busybox")
        container.volumeMounts = [VolumeMount(name: "settings", mountPath: "/etc/app")]
        var pod = Pod(metadata: ObjectMeta(name: "writer", namespace: "edge"), spec: PodSpec(containers: [container]))
        pod.metadata.uid = "cmro-1"
        var settings = Volume(name: "settings")
        settings.configMap = ConfigMapVolumeSource(name: "settings")
        pod.spec?.volumes = [settings]
        let volumes = PodVolumes(podDirectory: base + "/pod")
        let sources = VolumePayload.Sources(configMap: { _ in ConfigMap(metadata: ObjectMeta(name: "settings"), data: ["level": "debug"]) })
        let paths = try volumes.prepare(pod, sources: sources, memoryLimit: 1 << 20)
        defer { try? volumes.tearDown() }
        let output = try run(pod, container, mounts: try volumes.mounts(for: container, volumes: paths),
                             script: "cat /etc/app/level; echo; ln -sfn ../../../../../../tmp /etc/app/..data; echo ln=$?; echo x > /etc/app/new; echo write=$?", base: base)
        #expect(output.hasPrefix("debug\n") && output.contains("ln=1") && output.contains("write=1") && output.contains("Read-only file system"), "\(output)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: paths["settings"]!.path + "/..data").hasPrefix("..1"))
    }

    /// A subPath checked, then swapped for a symlink to a host directory before the container
    /// starts (another container sharing the volume can do that): the container gets what was checked.
    @Test func aSubPathSwappedAfterTheCheckMountsWhatWasChecked() throws {
        let base = ContainerFixture.base("subpathswap")
        defer { try? FileManager.default.removeItem(atPath: base) }
        let secrets = base + "/host-secrets"
        try FileManager.default.createDirectory(atPath: secrets, withIntermediateDirectories: true)
        try "host-secret".write(toFile: secrets + "/key", atomically: true, encoding: .utf8)
        let (pod, container) = Self.sharedVolumePod("swapper", subPath: "logs")
        let volumes = PodVolumes(podDirectory: base + "/pod")
        let paths = try volumes.prepare(pod, sources: VolumePayload.Sources(), memoryLimit: 1 << 20)
        defer { try? volumes.tearDown() }
        let logs = paths["shared"]!.path + "/logs"
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        try "container-data".write(toFile: logs + "/key", atomically: true, encoding: .utf8)
        let mounts = try volumes.mounts(for: container, volumes: paths)
        // The swap, as a neighbour container would do it.
        try FileManager.default.moveItem(atPath: logs, toPath: paths["shared"]!.path + "/old")
        try FileManager.default.createSymbolicLink(atPath: logs, withDestinationPath: secrets)
        let output = try run(pod, container, mounts: mounts, script: "cat /data/key", base: base)
        #expect(output == "container-data", "\(output)")
    }

    /// The same for a hostPath volume whose directory another pod can replace.
    @Test func aHostPathSwappedAfterTheCheckMountsWhatWasChecked() throws {
        let base = ContainerFixture.base("hostpathswap")
        defer { try? FileManager.default.removeItem(atPath: base) }
        let secrets = base + "/host-secrets", data = base + "/shared/data"
        for directory in [secrets, data] { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        try "host-secret".write(toFile: secrets + "/key", atomically: true, encoding: .utf8)
        try "allowed-data".write(toFile: data + "/key", atomically: true, encoding: .utf8)
        var container = Container(name: "app", image: "busybox")
        container.volumeMounts = [VolumeMount(name: "data", mountPath: "/data")]
        var pod = Pod(metadata: ObjectMeta(name: "hostpath", namespace: "edge"), spec: PodSpec(containers: [container]))
        pod.metadata.uid = "hostpath-1"
        var volume = Volume(name: "data")
        volume.hostPath = HostPathVolumeSource(path: data, type: .directory)
        pod.spec?.volumes = [volume]
        let volumes = PodVolumes(podDirectory: base + "/pod")
        let paths = try volumes.prepare(pod, sources: VolumePayload.Sources(), memoryLimit: 1 << 20, allowedHostPaths: [base + "/shared"])
        defer { try? volumes.tearDown() }
        try FileManager.default.moveItem(atPath: data, toPath: base + "/shared/old")
        try FileManager.default.createSymbolicLink(atPath: data, withDestinationPath: secrets)
        #expect(try String(contentsOfFile: paths["data"]!.path + "/key", encoding: .utf8) == "allowed-data")
        let output = try run(pod, container, mounts: try volumes.mounts(for: container, volumes: paths), script: "cat /data/key", base: base)
        #expect(output == "allowed-data", "\(output)")
        // Checked again on a new pod: the link now leads outside allowedHostPaths.
        let other = PodVolumes(podDirectory: base + "/pod2")
        #expect { _ = try other.prepare(pod, sources: VolumePayload.Sources(), memoryLimit: 1 << 20, allowedHostPaths: [base + "/shared"]) } throws: {
            "\($0)".contains("leads outside the node's allowedHostPaths")
        }
        try volumes.tearDown()
        #expect(try String(contentsOfFile: base + "/shared/old/key", encoding: .utf8) == "allowed-data", "tearing down unmounts, never empties, the host directory")
    }

    /// A missing subPath is created inside the volume only: a symlink planted in it is never
    /// followed to make directories on the host.
    @Test func creatingASubPathDoesNotFollowAPlantedSymlink() throws {
        let base = ContainerFixture.base("subpathmkdir")
        defer { try? FileManager.default.removeItem(atPath: base) }
        let outside = base + "/outside"
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        let (pod, container) = Self.sharedVolumePod("mkdir", subPath: "a/b/c")
        let volumes = PodVolumes(podDirectory: base + "/pod")
        let paths = try volumes.prepare(pod, sources: VolumePayload.Sources(), memoryLimit: 1 << 20)
        defer { try? volumes.tearDown() }
        try FileManager.default.createSymbolicLink(atPath: paths["shared"]!.path + "/a", withDestinationPath: outside)
        #expect { _ = try volumes.mounts(for: container, volumes: paths) } throws: { "\($0)".contains("subPath \"a/b/c\" leads outside the volume") }
        #expect(!FileManager.default.fileExists(atPath: outside + "/b"), "nothing made on the host")
    }
}
