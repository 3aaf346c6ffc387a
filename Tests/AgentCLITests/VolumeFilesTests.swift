import Foundation
import Agent
import KubeModel
import IotkubeTestSupport
import Testing

/// configMap, secret, downwardAPI and projected volumes: their files, and how updates land.
@Suite(.ownThread) struct VolumeFilesTests {
    static func directory() -> String { NSTemporaryDirectory() + "iotkube-volume-\(UUID().uuidString)" }
    static func text(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }
    static func link(_ path: String) -> String? { try? FileManager.default.destinationOfSymbolicLink(atPath: path) }

    @Test func updatesSwapOneSymlinkAndLeaveNothingOld() throws {
        let volume = Self.directory()
        let writer = VolumeDirectoryWriter(directory: volume)
        #expect(try writer.write(["app.conf": .init(Array("level=info\n".utf8)), "certs/ca.pem": .init(Array("CA1".utf8), mode: 0o600)]))
        let first = try #require(Self.link(volume + "/..data"))
        #expect(first.hasPrefix("..") && Self.link(volume + "/app.conf") == "..data/app.conf" && Self.link(volume + "/certs") == "..data/certs")
        #expect(Self.text(volume + "/certs/ca.pem") == "CA1")
        let attributes = try FileManager.default.attributesOfItem(atPath: volume + "/" + first + "/certs/ca.pem")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        // A reader that opened the old file keeps a consistent view while the update lands.
        let held = try FileHandle(forReadingFrom: URL(fileURLWithPath: volume + "/app.conf"))
        #expect(try !writer.write(["app.conf": .init(Array("level=info\n".utf8)), "certs/ca.pem": .init(Array("CA1".utf8), mode: 0o600)]), "unchanged: nothing written")
        #expect(try writer.write(["app.conf": .init(Array("level=debug\n".utf8)), "extra": .init(Array("x".utf8))]))
        #expect(String(decoding: held.readDataToEndOfFile(), as: UTF8.self) == "level=info\n")
        #expect(Self.text(volume + "/app.conf") == "level=debug\n" && Self.text(volume + "/extra") == "x")
        #expect(!FileManager.default.fileExists(atPath: volume + "/certs"), "a removed key's link is gone")
        let entries = try FileManager.default.contentsOfDirectory(atPath: volume).sorted()
        #expect(entries.count == 4 && entries.contains("..data") && entries.contains("app.conf") && entries.contains("extra"), "\(entries)")
        #expect(!entries.contains(first), "the old directory is removed")
        for bad in ["/etc/passwd", "../escape", "a/../../b", "..hidden", ""] {
            #expect { try writer.write([bad: .init([])]) } throws: { "\($0)".contains("must be relative") }
        }
    }

    @Test func configMapSecretDownwardAndProjectedContents() throws {
        let settings = {
            var map = ConfigMap(metadata: ObjectMeta(name: "settings", namespace: "edge"), data: ["level": "debug", "mode": "fast"])
            map.binaryData = ["blob": Base64Bytes([0, 1, 2])]
            return map
        }()
        let token = Secret(metadata: ObjectMeta(name: "token", namespace: "edge"), data: ["key": Base64Bytes("s3cret")])
        let sources = VolumePayload.Sources(configMap: { $0 == "settings" ? settings : nil }, secret: { $0 == "token" ? token : nil },
                                            serviceAccountToken: { audience, seconds in "token-for-\(audience ?? "api")-\(seconds)" })
        var pod = Pod(metadata: ObjectMeta(name: "reader", namespace: "edge", labels: ["app": "reader", "tier": "edge\"x"]), spec: PodSpec(containers: [Container(name: "app")]))
        pod.spec?.containers[0].resources = ResourceRequirements(limits: ["memory": try Quantity(parsing: "64Mi")])

        var volume = Volume(name: "config")
        volume.configMap = ConfigMapVolumeSource(name: "settings")
        let all = try VolumePayload.files(for: volume, pod: pod, sources: sources)
        #expect(Set(all.keys) == ["level", "mode", "blob"] && all["blob"]?.bytes == [0, 1, 2] && all["level"]?.mode == 0o644)
        volume.configMap?.items = [KeyToPath(key: "level", path: "conf/level.txt", mode: 0o400)]
        volume.configMap?.defaultMode = 0o600
        let picked = try VolumePayload.files(for: volume, pod: pod, sources: sources)
        #expect(picked == ["conf/level.txt": .init(Array("debug".utf8), mode: 0o400)])
        volume.configMap?.items = [KeyToPath(key: "absent", path: "x")]
        #expect { _ = try VolumePayload.files(for: volume, pod: pod, sources: sources) } throws: { "\($0)" == "volume config: ConfigMap \"settings\" has no key \"absent\"" }
        volume.configMap?.name = "gone"
        #expect { _ = try VolumePayload.files(for: volume, pod: pod, sources: sources) } throws: { "\($0)" == "volume config: ConfigMap \"gone\" not found" }
        volume.configMap?.optional = true
        #expect(try VolumePayload.files(for: volume, pod: pod, sources: sources).isEmpty)

        var secret = Volume(name: "creds")
        secret.secret = SecretVolumeSource(secretName: "token")
        secret.secret?.defaultMode = 0o400
        #expect(try VolumePayload.files(for: secret, pod: pod, sources: sources) == ["key": .init(Array("s3cret".utf8), mode: 0o400)])

        var projected = Volume(name: "kube-api-access")
        var tokenProjection = VolumeProjection()
        tokenProjection.serviceAccountToken = ServiceAccountTokenProjection(path: "token", expirationSeconds: 3607)
        var downward = VolumeProjection()
        downward.downwardAPI = DownwardAPIProjection(items: [
            DownwardAPIVolumeFile(path: "labels", fieldRef: ObjectFieldSelector(fieldPath: "metadata.labels")),
            DownwardAPIVolumeFile(path: "namespace", fieldRef: ObjectFieldSelector(fieldPath: "metadata.namespace")),
            DownwardAPIVolumeFile(path: "memory_limit", resourceFieldRef: ResourceFieldSelector(resource: "limits.memory", containerName: "app", divisor: try Quantity(parsing: "1Mi"))),
        ])
        projected.projected = ProjectedVolumeSource(sources: [tokenProjection, downward])
        let files = try VolumePayload.files(for: projected, pod: pod, sources: sources)
        #expect(files["token"]?.bytes == Array("token-for-api-3607".utf8))
        #expect(files["labels"]?.bytes == Array("app=\"reader\"\ntier=\"edge\\\"x\"".utf8))
        #expect(files["namespace"]?.bytes == Array("edge".utf8) && files["memory_limit"]?.bytes == Array("64".utf8))
        projected.projected?.sources = [downward, downward]
        #expect { _ = try VolumePayload.files(for: projected, pod: pod, sources: sources) } throws: { "\($0)".contains("two projected sources write") }
    }
}

/// Volumes on the node and as container mounts.
@Suite(.ownThread, .enabled(if: getuid() == 0, "needs root (tmpfs mounts)"))
struct PodVolumesTests {
    @Test func volumesAreSetUpCheckedAndMounted() throws {
        let base = NSTemporaryDirectory() + "iotkube-podvol-\(UUID().uuidString)"
        let host = base + "/host"
        try FileManager.default.createDirectory(atPath: host + "/data", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: host + "/data/escape", withDestinationPath: "/etc")
        var pod = Pod(metadata: ObjectMeta(name: "reader", namespace: "edge"), spec: PodSpec(containers: [Container(name: "app")]))
        var memory = Volume(name: "scratch")
        memory.emptyDir = EmptyDirVolumeSource(medium: .memory, sizeLimit: try Quantity(parsing: "1Mi"))
        var disk = Volume(name: "cache")
        disk.emptyDir = EmptyDirVolumeSource()
        var data = Volume(name: "data")
        data.hostPath = HostPathVolumeSource(path: host + "/data", type: .directory)
        var created = Volume(name: "created")
        created.hostPath = HostPathVolumeSource(path: host + "/new/dir", type: .directoryOrCreate)
        var settings = Volume(name: "settings")
        settings.configMap = ConfigMapVolumeSource(name: "settings")
        pod.spec?.volumes = [memory, disk, data, created, settings]
        let volumes = PodVolumes(podDirectory: base + "/pod")
        let sources = VolumePayload.Sources(configMap: { _ in ConfigMap(metadata: ObjectMeta(name: "settings"), data: ["level": "debug"]) })
        let paths = try volumes.prepare(pod, sources: sources, memoryLimit: 1 << 30)
        defer { try? volumes.tearDown() }
        // hostPath volumes are the agent's bind mounts of what it opened and checked.
        #expect(paths["data"]?.path == base + "/pod/volume-hostpaths/data" && FileManager.default.fileExists(atPath: host + "/new/dir"))
        #expect(paths["settings"]?.apiData == true && paths["data"]?.apiData == false)
        #expect(try String(contentsOfFile: paths["settings"]!.path + "/level", encoding: .utf8) == "debug")
        // The Memory emptyDir is a 1 MiB tmpfs: a 2 MiB file does not fit.
        let fill = try ServerProcess.run("/bin/sh", ["-c", "head -c 2097152 /dev/zero > \(paths["scratch"]!.path)/big; echo $?; df -k \(paths["scratch"]!.path) | tail -1"])
        #expect(fill.output.contains("No space left on device") && fill.output.contains("\n1\n") && fill.output.contains("tmpfs"), "\(fill.output)")

        var wrongType = Volume(name: "wrong")
        wrongType.hostPath = HostPathVolumeSource(path: host + "/data", type: .file)
        pod.spec?.volumes = [wrongType]
        #expect { _ = try volumes.prepare(pod, sources: sources, memoryLimit: 1 << 30) } throws: {
            "\($0)" == "volume wrong: hostPath type check failed: \(host)/data is not a file"
        }

        var container = Container(name: "app")
        container.volumeMounts = [VolumeMount(name: "settings", mountPath: "/etc/app", readOnly: true), VolumeMount(name: "data", mountPath: "/data", subPath: "logs")]
        let mounts = try volumes.mounts(for: container, volumes: paths)
        #expect(FileManager.default.fileExists(atPath: host + "/data/logs"), "a missing subPath is made inside the volume")
        try "kept".write(toFile: host + "/data/logs/marker", atomically: true, encoding: .utf8)
        #expect(mounts.map(\.destination) == ["/etc/app", "/data"])
        #expect(mounts[0].options == ["rbind", "ro", "rprivate"] && mounts[1].source == base + "/pod/volume-subpaths/data/app/1")
        #expect(try String(contentsOfFile: (mounts[1].source ?? "") + "/marker", encoding: .utf8) == "kept", "the subPath's bind mount")
        container.volumeMounts = [VolumeMount(name: "data", mountPath: "/x", subPath: "escape")]
        #expect { _ = try volumes.mounts(for: container, volumes: paths) } throws: { "\($0)".contains("subPath \"escape\" leads outside the volume") }
        container.volumeMounts = [VolumeMount(name: "data", mountPath: "/x", subPath: "../../etc")]
        #expect { _ = try volumes.mounts(for: container, volumes: paths) } throws: { "\($0)".contains("must stay inside the volume") }
        container.volumeMounts = [VolumeMount(name: "nope", mountPath: "/x")]
        #expect { _ = try volumes.mounts(for: container, volumes: paths) } throws: { "\($0)" == "container app: volumeMount nope: the pod has no volume \"nope\"" }
        try volumes.tearDown()
        #expect(!FileManager.default.fileExists(atPath: base + "/pod/volumes"))
    }
}
