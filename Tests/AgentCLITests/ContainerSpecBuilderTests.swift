import Foundation
import Agent
import KubeModel
import OCI
import PodNetwork
import IotkubeTestSupport
import Testing

/// Pod and container settings as the OCI configuration the runtime gets.
@Suite(.ownThread) struct ContainerSpecBuilderTests {
    static let rootfs: String = {
        let root = NSTemporaryDirectory() + "iotkube-specroot-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
        try? "root:x:0:0::/root:/bin/sh\nweb:x:33:33::/var/www:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n".write(toFile: root + "/etc/passwd", atomically: true, encoding: .utf8)
        try? "root:x:0:\nwww:x:33:\napp:x:1000:\ngpio:x:997:app,web\n".write(toFile: root + "/etc/group", atomically: true, encoding: .utf8)
        return root
    }()

    static func input(_ change: (inout Pod, inout Container) -> Void = { _, _ in }, imageUser: String? = nil, hostNetwork: Bool = false) -> ContainerSpecBuilder.Input {
        var container = Container(name: "app", image: "busybox")
        var pod = Pod(metadata: ObjectMeta(name: "reader", namespace: "edge"), spec: PodSpec(containers: [container]))
        pod.metadata.uid = "uid-1"
        change(&pod, &container)
        pod.spec?.containers = [container]
        if hostNetwork { pod.spec?.hostNetwork = true }
        let process = ContainerProcess(args: ["/bin/app"], env: ["A=1"], workingDirectory: "/srv", warnings: [])
        return ContainerSpecBuilder.Input(
            pod: pod, container: container, process: process, imageUser: imageUser, rootfs: rootfs,
            sandbox: hostNetwork ? nil : PodSandbox(directory: "/run/iotkube/sandboxes/uid-1"), cgroupsPath: "iotkube/poduid-1/app",
            seccompProfileRoot: rootfs + "/profiles", nodeMemoryCapacity: 1 << 30)
    }

    @Test func defaultsJoinTheSandboxWithRuntimeDefaultSeccomp() throws {
        let spec = try ContainerSpecBuilder.build(Self.input())
        #expect(spec.process?.args == ["/bin/app"] && spec.process?.env == ["A=1"] && spec.process?.cwd == "/srv")
        #expect(spec.process?.user.uid == 0 && spec.process?.user.gid == 0)
        #expect(spec.process?.noNewPrivileges == false, "allowPrivilegeEscalation defaults to true")
        #expect(spec.process?.oomScoreAdj == 1000, "BestEffort")
        #expect(spec.root?.readonly == false && spec.root?.path == Self.rootfs)
        #expect(spec.hostname == nil, "the sandbox holds the pod's hostname")
        let namespaces = spec.linux?.namespaces ?? []
        #expect(namespaces.first { $0.type == "network" }?.path == "/run/iotkube/sandboxes/uid-1/net")
        #expect(namespaces.first { $0.type == "uts" }?.path == "/run/iotkube/sandboxes/uid-1/uts")
        #expect(namespaces.first { $0.type == "ipc" }?.path == "/run/iotkube/sandboxes/uid-1/ipc")
        #expect(namespaces.contains { $0.type == "pid" && $0.path == nil })
        #expect(spec.linux?.seccomp?.defaultAction == "SCMP_ACT_ERRNO")
        #expect(spec.linux?.resources?.cpu?.shares == 2 && spec.linux?.resources?.memory == nil)
        #expect(spec.linux?.cgroupsPath == "iotkube/poduid-1/app")
        #expect(spec.annotations?["io.kubernetes.pod.uid"] == "uid-1")
    }

    /// cgroup v2 with a memory controller: an OOM kill takes the whole container (the kubelet's
    /// memory.oom.group); elsewhere nothing is asked of a controller that may not exist.
    @Test func anOOMKillTakesTheWholeContainerWhereTheHostCanDoIt() throws {
        #expect(try ContainerSpecBuilder.build(Self.input()).linux?.resources?.unified == nil)
        var input = Self.input()
        input.groupOOMKill = true
        #expect(try ContainerSpecBuilder.build(input).linux?.resources?.unified == ["memory.oom.group": "1"])
    }

    @Test func hostNetworkKeepsTheHostsNamespacesAndHostname() throws {
        let spec = try ContainerSpecBuilder.build(Self.input(hostNetwork: true))
        #expect(spec.hostname == nil)
        #expect(!(spec.linux?.namespaces ?? []).contains { $0.type == "network" || $0.type == "uts" })
    }

    @Test func usersFromSecurityContextsAndTheImage() throws {
        func user(_ imageUser: String?, _ change: @escaping (inout Pod, inout Container) -> Void = { _, _ in }) throws -> RuntimeSpec.User {
            try #require(ContainerSpecBuilder.build(Self.input(change, imageUser: imageUser)).process?.user)
        }
        #expect(try user("web") == { var u = RuntimeSpec.User(uid: 33, gid: 33); u.additionalGids = [997]; return u }())
        #expect(try user("1000:33").gid == 33)
        // app is a member of gpio (997) by /etc/group; its primary group is replaced by www.
        #expect(try user("app:www") == { var u = RuntimeSpec.User(uid: 1000, gid: 33); u.additionalGids = [997]; return u }())
        let fromContext = try user("web") { pod, container in
            pod.spec?.securityContext = PodSecurityContext()
            pod.spec?.securityContext?.runAsUser = 1000
            pod.spec?.securityContext?.supplementalGroups = [44]
            pod.spec?.securityContext?.fsGroup = 2000
            container.securityContext = SecurityContext()
            container.securityContext?.runAsGroup = 1234
        }
        #expect(fromContext.uid == 1000 && fromContext.gid == 1234 && fromContext.additionalGids == [997, 44, 2000])
        #expect { _ = try user("nobody-here") } throws: { "\($0)" == "container app: the image's user \"nobody-here\" is not in its /etc/passwd" }
        let nonRoot: (inout Pod, inout Container) -> Void = { _, container in
            container.securityContext = SecurityContext()
            container.securityContext?.runAsNonRoot = true
        }
        #expect { _ = try user(nil, nonRoot) } throws: { "\($0)" == "container app: container has runAsNonRoot and image will run as root" }
        #expect { _ = try user("web", nonRoot) } throws: { "\($0)".contains("image has non-numeric user (web), cannot verify user is non-root") }
        #expect(try user("33", nonRoot).uid == 33)
    }

    @Test func capabilitiesPrivilegeAndSeccompProfiles() throws {
        let dropped = try ContainerSpecBuilder.build(Self.input { _, container in
            container.securityContext = SecurityContext()
            container.securityContext?.capabilities = KubeModel.Capabilities(add: ["NET_BIND_SERVICE", "cap_net_raw"], drop: ["ALL"])
            container.securityContext?.allowPrivilegeEscalation = false
            container.securityContext?.readOnlyRootFilesystem = true
            container.securityContext?.seccompProfile = SeccompProfile(type: .unconfined)
        })
        #expect(dropped.process?.capabilities?.bounding == ["CAP_NET_BIND_SERVICE", "CAP_NET_RAW"])
        #expect(dropped.process?.noNewPrivileges == true && dropped.root?.readonly == true && dropped.linux?.seccomp == nil)
        #expect {
            _ = try ContainerSpecBuilder.build(Self.input { _, container in
                container.securityContext = SecurityContext()
                container.securityContext?.capabilities = KubeModel.Capabilities(add: ["FLY"])
            })
        } throws: { "\($0)" == "container app: unknown capability \"FLY\"" }
        let privileged = try ContainerSpecBuilder.build(Self.input { _, container in
            container.securityContext = SecurityContext()
            container.securityContext?.privileged = true
        })
        #expect((privileged.process?.capabilities?.bounding ?? []).contains("CAP_SYS_ADMIN"))
        #expect(privileged.linux?.seccomp == nil && privileged.linux?.maskedPaths == nil)
        #expect(privileged.linux?.resources?.devices?.last?.type == "a")
        #expect(privileged.mounts?.first { $0.destination == "/sys" }?.options?.contains("ro") == false)
        // Localhost profiles come from the profile directory, never from outside it.
        try FileManager.default.createDirectory(atPath: Self.rootfs + "/profiles", withIntermediateDirectories: true)
        try #"{"defaultAction":"SCMP_ACT_LOG"}"#.write(toFile: Self.rootfs + "/profiles/audit.json", atomically: true, encoding: .utf8)
        func localhost(_ path: String) throws -> RuntimeSpec.Seccomp? {
            try ContainerSpecBuilder.build(Self.input { pod, _ in
                pod.spec?.securityContext = PodSecurityContext()
                pod.spec?.securityContext?.seccompProfile = SeccompProfile(type: .localhost, localhostProfile: path)
            }).linux?.seccomp
        }
        #expect(try localhost("audit.json")?.defaultAction == "SCMP_ACT_LOG")
        #expect { _ = try localhost("../../etc/passwd") } throws: { "\($0)".contains("needs a localhostProfile path inside") }
        #expect { _ = try localhost("missing.json") } throws: { "\($0)".contains("missing.json cannot be read") }
    }

    @Test func resourcesAndQualityOfService() throws {
        func spec(requests: [String: String], limits: [String: String]) throws -> RuntimeSpec {
            try ContainerSpecBuilder.build(Self.input { _, container in
                container.resources = ResourceRequirements(
                    limits: limits.isEmpty ? nil : limits.mapValues { try! Quantity(parsing: $0) },
                    requests: requests.isEmpty ? nil : requests.mapValues { try! Quantity(parsing: $0) })
            })
        }
        let guaranteed = try spec(requests: [:], limits: ["cpu": "500m", "memory": "128Mi"])
        #expect(guaranteed.linux?.resources?.cpu?.shares == 512 && guaranteed.linux?.resources?.cpu?.quota == 50_000 && guaranteed.linux?.resources?.cpu?.period == 100_000)
        #expect(guaranteed.linux?.resources?.memory?.limit == 134_217_728 && guaranteed.linux?.resources?.memory?.swap == 134_217_728)
        #expect(guaranteed.process?.oomScoreAdj == -997)
        let burstable = try spec(requests: ["cpu": "100m", "memory": "256Mi"], limits: ["memory": "512Mi"])
        #expect(burstable.linux?.resources?.cpu?.shares == 102 && burstable.linux?.resources?.cpu?.quota == nil)
        #expect(burstable.process?.oomScoreAdj == 750, "1000 - 1000 × 256Mi / 1Gi")
        #expect(try spec(requests: [:], limits: ["cpu": "1m"]).linux?.resources?.cpu?.quota == 1000, "at least 1 ms per period")
    }
}

/// The built configuration launched for real: user, groups, capabilities, the sandbox's
/// hostname and network, environment and OOM score as the process sees them.
@Suite(.ownThread, .enabled(if: getuid() == 0 && toolAvailable("busybox"), "needs root (namespaces) and busybox-static"))
struct ContainerSpecLaunchTests {
    @Test func theContainerSeesWhatThePodSays() throws {
        let agent = ContainerFixture.agent
        let base = ContainerFixture.base("podlaunch")
        let rootfs = base + "/rootfs"
        try ContainerFixture.busyboxRoot(at: rootfs, applets: ["sh", "id", "hostname", "grep", "cat", "ip"])
        try "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/tmp:/bin/sh\n".write(toFile: rootfs + "/etc/passwd", atomically: true, encoding: .utf8)
        try "root:x:0:\napp:x:1000:\ngpio:x:997:app\n".write(toFile: rootfs + "/etc/group", atomically: true, encoding: .utf8)
        let sandbox = try PodSandbox.create(directory: base + "/sandbox", hostname: "sensor-reader")
        defer { try? sandbox.remove() }

        var container = Container(name: "reader", image: "busybox")
        container.securityContext = SecurityContext()
        container.securityContext?.runAsUser = 1000
        container.securityContext?.capabilities = KubeModel.Capabilities(add: ["NET_BIND_SERVICE"], drop: ["ALL"])
        container.resources = ResourceRequirements(limits: ["memory": try Quantity(parsing: "64Mi")], requests: ["memory": try Quantity(parsing: "32Mi")])
        var pod = Pod(metadata: ObjectMeta(name: "sensor-reader", namespace: "edge"), spec: PodSpec(containers: [container]))
        pod.metadata.uid = "launch-1"
        let process = ContainerProcess(
            args: ["sh", "-c", "id; hostname; grep CapBnd /proc/self/status; echo A=$A; cat /proc/self/oom_score_adj; ip -o link | grep -c -v ' lo:'; true"],
            env: ["PATH=/bin", "A=from-the-pod"], workingDirectory: "/tmp")
        let spec = try ContainerSpecBuilder.build(ContainerSpecBuilder.Input(
            pod: pod, container: container, process: process, imageUser: nil, rootfs: rootfs, sandbox: sandbox,
            cgroupsPath: "/iotkube-test/launch-\(UUID().uuidString)", seccompProfileRoot: base, nodeMemoryCapacity: 1 << 30))
        let bundle = try ContainerFixture.bundle(spec, in: base)
        let run = try ServerProcess.run(agent, ["runtime", "--root", base + "/state", "run", "--bundle", bundle, "launch"])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("uid=1000(app) gid=1000(app) groups=997(gpio)") || run.output.contains("uid=1000(app) gid=1000(app) groups=1000(app),997(gpio)"), "\(run.output)")
        #expect(run.output.contains("\nsensor-reader\n"), "the sandbox's hostname: \(run.output)")
        #expect(run.output.contains("CapBnd:\t0000000000000400"), "only NET_BIND_SERVICE: \(run.output)")
        #expect(run.output.contains("A=from-the-pod"))
        #expect(run.output.contains("\n969\n"), "Burstable: 1000 - 1000 × 32Mi / 1Gi, rounded down: \(run.output)")
        #expect(run.output.hasSuffix("0\n"), "the sandbox has only loopback before CNI: \(run.output)")
    }
}

/// The node-side pieces of a pod put together by hand, as the pod worker will: an overlay root
/// over image layers, the pod files, a configMap volume and an emptyDir, then a real launch.
@Suite(.ownThread, .enabled(if: getuid() == 0 && toolAvailable("busybox"), "needs root (overlay, namespaces) and busybox-static"))
struct PodAssemblyTests {
    @Test func aContainerWritesItsOwnLayerAndSeesThePodFiles() throws {
        let agent = ContainerFixture.agent
        let base = ContainerFixture.base("assembly")
        // Two "image layers": busybox below, a config file above that shadows one from below.
        let bottom = base + "/layers/1", top = base + "/layers/2"
        try ContainerFixture.busyboxRoot(at: bottom, applets: ["sh", "cat", "echo", "hostname"])
        try FileManager.default.createDirectory(atPath: top + "/etc", withIntermediateDirectories: true)
        try "from the bottom layer\n".write(toFile: bottom + "/etc/motd", atomically: true, encoding: .utf8)
        try "from the top layer\n".write(toFile: top + "/etc/motd", atomically: true, encoding: .utf8)

        var container = Container(name: "app", image: "local/test")
        container.volumeMounts = [VolumeMount(name: "settings", mountPath: "/etc/app", readOnly: true), VolumeMount(name: "scratch", mountPath: "/scratch")]
        var pod = Pod(metadata: ObjectMeta(name: "assembled", namespace: "edge"), spec: PodSpec(containers: [container]))
        pod.metadata.uid = "assembly-1"
        var settings = Volume(name: "settings")
        settings.configMap = ConfigMapVolumeSource(name: "settings")
        var scratch = Volume(name: "scratch")
        scratch.emptyDir = EmptyDirVolumeSource()
        pod.spec?.volumes = [settings, scratch]
        pod.spec?.hostAliases = [HostAlias(ip: "192.168.1.20", hostnames: ["plc"])]

        let podDirectory = base + "/pods/assembly-1"
        let sandbox = try PodSandbox.create(directory: podDirectory + "/sandbox", hostname: PodDNS.hostname(for: pod))
        defer { try? sandbox.remove() }
        let volumes = PodVolumes(podDirectory: podDirectory)
        let paths = try volumes.prepare(pod, sources: VolumePayload.Sources(configMap: { _ in ConfigMap(metadata: ObjectMeta(name: "settings"), data: ["level": "debug"]) }), memoryLimit: 1 << 20)
        defer { try? volumes.tearDown() }
        let files = PodFiles(podDirectory: podDirectory)
        _ = try files.write(for: pod, dns: PodDNS(hostResolvConf: "nameserver 192.0.2.53\n"), podIPs: ["10.42.0.9"], nodeHosts: "", nodeHostname: "board")
        let containerDirectory = podDirectory + "/containers/app"
        let rootfs = try ContainerRootfs.mount(.layers([bottom, top]), containerDirectory: containerDirectory)
        defer { try? ContainerRootfs.remove(containerDirectory: containerDirectory) }
        #expect(try ContainerRootfs.mount(.layers([bottom, top]), containerDirectory: containerDirectory) == rootfs, "mounting again finds it mounted")

        let process = ContainerProcess(
            args: ["sh", "-c", "cat /etc/motd /etc/app/level; echo; grep -h assembled /etc/hosts; grep plc /etc/hosts; cat /etc/resolv.conf; hostname; echo written > /etc/motd; echo kept > /scratch/out; echo 'gave up' > /dev/termination-log"],
            env: ["PATH=/bin"], workingDirectory: "/")
        var mounts = try files.mounts(for: container)
        mounts += try volumes.mounts(for: container, volumes: paths)
        let spec = try ContainerSpecBuilder.build(ContainerSpecBuilder.Input(
            pod: pod, container: container, process: process, imageUser: nil, rootfs: rootfs, sandbox: sandbox,
            cgroupsPath: "/iotkube-test/assembly-\(UUID().uuidString)", mounts: mounts, seccompProfileRoot: base, nodeMemoryCapacity: 1 << 30))
        let bundle = try ContainerFixture.bundle(spec, in: base)
        let run = try ServerProcess.run(agent, ["runtime", "--root", base + "/state", "run", "--bundle", bundle, "assembled"])
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.hasPrefix("from the top layer\ndebug\n"), "\(run.output)")
        #expect(run.output.contains("10.42.0.9\tassembled\n") && run.output.contains("192.168.1.20\tplc"), "\(run.output)")
        #expect(run.output.contains("nameserver 192.0.2.53\n") && run.output.hasSuffix("assembled\n"), "\(run.output)")
        // The write went to the container's own layer; the image layers are untouched.
        #expect(try String(contentsOfFile: top + "/etc/motd", encoding: .utf8) == "from the top layer\n")
        #expect(try String(contentsOfFile: containerDirectory + "/upper/etc/motd", encoding: .utf8) == "written\n")
        #expect(try String(contentsOfFile: paths["scratch"]!.path + "/out", encoding: .utf8) == "kept\n")
        #expect(try String(contentsOfFile: files.terminationMessagePath(container: "app"), encoding: .utf8) == "gave up\n")
    }
}
