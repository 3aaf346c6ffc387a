import Foundation
import IotkubeTestSupport
import KubeModel
import Testing

/// Devices for pods end to end: device nodes made with mknod, offered by a real agent as
/// extended resources, scheduled by iotkube-server, admitted and assigned by the agent, and
/// reached (or not) from inside real containers; the assignment survives `kill -9` and
/// hotplug shows in the Node, the pod's status and its events.
@Suite(.ownThread, .heavy, .serialized, .enabled(if: PodNode.available, "needs root, kubectl, the CNI plugins, docker-registry, umoci, skopeo, busybox-static and curl"))
struct DevicePodTests {
    var image: String { (try? PodImageRegistry.shared.get().busybox) ?? "" }

    /// `hostDevices`: the host's device directory mounted at /host-devices (hostPath), so the
    /// container holds nodes it was not given.
    static func devicePod(_ name: String, sensors: Int, radios: Int = 0, nodeName: String? = nil, hostDevices: String? = nil, restartPolicy: String = "Always",
                          script: String) -> String {
        var limits = ["devices.iotkube.io/sensor: \(sensors)"]
        if radios > 0 { limits.append("devices.iotkube.io/radio: \(radios)") }
        return """
            apiVersion: v1
            kind: Pod
            metadata: {name: \(name)}
            spec:
              \(nodeName.map { "nodeName: \($0)" } ?? "")
              terminationGracePeriodSeconds: 1
              restartPolicy: \(restartPolicy)
              securityContext: {fsGroup: 2000}
              containers:
              - name: app
                image: IMAGE
                command: ["sh", "-c"]
                args:
                - |
            \(script.split(separator: "\n").map { "        " + $0 }.joined(separator: "\n"))
                resources:
                  limits: {\(limits.joined(separator: ", "))}
                volumeMounts: [\(hostDevices == nil ? "" : "{name: host-devices, mountPath: /host-devices}")]
              volumes: [\(hostDevices.map { "{name: host-devices, hostPath: {path: \"\($0)\"}}" } ?? "")]
            """
    }

    /// The devices a pod's first container holds, from its status (`allocatedResourcesStatus`).
    static func heldDevices(_ pod: Pod) -> [String] {
        (pod.status?.containerStatuses?.first?.allocatedResourcesStatus ?? []).flatMap { resource -> [String] in
            guard case .array(let entries)? = resource["resources"] else { return [] }
            return entries.compactMap { entry -> String? in
                if case .string(let id)? = entry["resourceID"] { return id }
                return nil
            }
        }.sorted()
    }

    @Test func podsGetExactlyTheirDevicesKeepThemThroughACrashAndSeeHotplug() async throws {
        let devices = NSTemporaryDirectory() + "iotkube-devnodes-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: devices, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: devices) }
        // Real majors (1:3 null, 1:5 zero, 1:7 full) and a radio of a major no driver has (240:0):
        // opening it where the device cgroup allows it fails with ENXIO, elsewhere with EPERM.
        for (name, major, minor) in [("sensor0", 1, 3), ("sensor1", 1, 5), ("sensor2", 1, 7), ("radio0", 240, 0)] {
            #expect(mknod(devices + "/" + name, S_IFCHR | 0o600, DeviceManagerTests.deviceNumber(UInt32(major), UInt32(minor))) == 0)
        }
        let node = try await PodNode.make(name: "device-board", configuration: """
            builtinDevices: false
            devices:
              - name: sensor
                paths: ["\(devices)/sensor*"]
              - name: radio
                paths: ["\(devices)/radio*"]
            """)
        // The Node as the API has it (nil until the agent registered it).
        let nodeStatus = { () async throws -> NodeStatus? in
            let result = try await node.serverKubectl(["get", "node", "device-board", "-o", "json"])
            return result.status == 0 ? try KubeJSON.decode(Node.self, from: Array(result.output.utf8)).status : nil
        }
        let allocatable = { () async throws -> [String: Quantity] in try await nodeStatus()?.allocatable ?? [:] }
        for _ in 0..<100 where try await allocatable()["devices.iotkube.io/sensor"]?.value != 3 { try await Task.sleep(for: .milliseconds(300)) }
        #expect(try await allocatable()["devices.iotkube.io/sensor"]?.value == 3)
        #expect(try await allocatable()["devices.iotkube.io/radio"]?.value == 1)

        // "early" takes sensor0 before the others start (it is deleted before the crash below, so a
        // fresh assignment after the restart would differ from the kept one).
        try await node.apply(Self.devicePod("early", sensors: 1, script: "sleep 100000").replacingOccurrences(of: "IMAGE", with: image))
        try await node.waitForPod("early", seconds: 90) { PodNode.status($0, "app")?.state?.running != nil }
        // A holds a sensor and the radio; B a sensor; plain holds nothing.
        let check = """
            echo "sensors=$IOTKUBE_DEVICES_SENSOR radios=$IOTKUBE_DEVICES_RADIO"
            ls /dev | tr '\\n' ' '; echo
            for d in $IOTKUBE_DEVICES_SENSOR; do true < $d && echo "opened $d"; ls -ln $d; done
            for f in /dev/radio0 /host-devices/radio0; do [ -e $f ] && (true < $f) 2>&1; done
            grep CapEff /proc/self/status
            sleep 100000
            """
        try await node.apply(Self.devicePod("a", sensors: 1, radios: 1, script: check).replacingOccurrences(of: "IMAGE", with: image) + "\n---\n"
            + Self.devicePod("b", sensors: 1, hostDevices: devices, script: check).replacingOccurrences(of: "IMAGE", with: image) + "\n---\n"
            + Self.devicePod("plain", sensors: 0, hostDevices: devices, script: check).replacingOccurrences(of: "IMAGE", with: image)
                .replacingOccurrences(of: "limits: {devices.iotkube.io/sensor: 0}", with: "limits: {}"))
        var logs: [String: String] = [:]
        for name in ["a", "b", "plain"] {
            try await node.waitForPod(name, seconds: 90) { PodNode.status($0, "app")?.state?.running != nil }
            for _ in 0..<50 {
                logs[name] = try await node.kubectl(["logs", name])
                if logs[name]!.contains("CapEff") { break }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
        let a = logs["a"]!, b = logs["b"]!, plain = logs["plain"]!
        // Exactly its devices, at /dev/<name>, owned by the fsGroup, listed in the variable.
        let aSensor = try #require(a.firstMatch(of: /sensors=(\/dev\/sensor\d) radios=\/dev\/radio0/)?.output.1).description
        let bSensor = try #require(b.firstMatch(of: /sensors=(\/dev\/sensor\d) radios=\n/)?.output.1).description
        #expect(aSensor != bSensor && aSensor != "/dev/sensor0" && bSensor != "/dev/sensor0")
        #expect(a.contains("opened \(aSensor)") && b.contains("opened \(bSensor)"))
        #expect(a.contains(" 2000 "), "the device is owned by the pod's fsGroup: \(a)")
        let sensorsIn = { (log: String) in log.split(separator: "\n")[1].split(separator: " ").filter { $0.hasPrefix("sensor") || $0.hasPrefix("radio") }.map(String.init) }
        #expect(sensorsIn(a) == [String(aSensor.dropFirst(5)), "radio0"].sorted(), "\(a)")
        #expect(sensorsIn(b) == [String(bSensor.dropFirst(5))], "\(b)")
        #expect(sensorsIn(plain).isEmpty, "\(plain)")
        // The device cgroup: the radio opens past the cgroup (no driver: ENXIO) only where it was
        // given; the host's node reached through a hostPath volume does not open.
        #expect(a.contains("can't open /dev/radio0: No such device or address"), "\(a)")
        #expect(b.contains("can't open /host-devices/radio0: Operation not permitted"), "\(b)")
        #expect(plain.contains("can't open /host-devices/radio0: Operation not permitted"), "\(plain)")
        // Nothing else changes: the same capabilities as a pod without devices.
        let capabilities = { (log: String) in log.split(separator: "\n").first { $0.hasPrefix("CapEff") } }
        #expect(capabilities(a) != nil && capabilities(a) == capabilities(plain) && capabilities(b) == capabilities(plain))

        // None left. The scheduler holds back a pod asking for two; the agent refuses one bound to it.
        try await node.apply(Self.devicePod("greedy", sensors: 2, script: "sleep 100000").replacingOccurrences(of: "IMAGE", with: image))
        let greedy = try await node.waitForPod("greedy", seconds: 30) { $0.status?.conditions?.contains { $0.reason == "Unschedulable" } == true }
        #expect(greedy.status?.conditions?.first { $0.type == "PodScheduled" }?.message?.contains("Insufficient devices.iotkube.io/sensor") == true)
        try await node.apply(Self.devicePod("bound", sensors: 2, nodeName: "device-board", script: "sleep 100000").replacingOccurrences(of: "IMAGE", with: image))
        let bound = try await node.waitForPod("bound", seconds: 60) { $0.status?.phase == .failed }
        #expect(bound.status?.reason == "OutOfdevices.iotkube.io/sensor")
        #expect(bound.status?.message == "Pod was rejected: Node didn't have enough resource: devices.iotkube.io/sensor, requested: 2, used: 3, capacity: 3")
        // An unknown class: no node has it.
        try await node.apply(Self.devicePod("lidar", sensors: 0, nodeName: "device-board", script: "sleep 100000").replacingOccurrences(of: "IMAGE", with: image)
            .replacingOccurrences(of: "limits: {devices.iotkube.io/sensor: 0}", with: "limits: {devices.iotkube.io/lidar: 1}"))
        let lidar = try await node.waitForPod("lidar", seconds: 60) { $0.status?.phase == .failed }
        #expect(lidar.status?.reason == "OutOfdevices.iotkube.io/lidar")
        try await node.kubectl(["delete", "pod", "greedy", "bound", "lidar", "--wait=false"])

        // kill -9: the agent comes back with the same assignment: A and B keep theirs (a fresh
        // one would give them sensor0 and sensor1), and a new pod gets the free sensor0.
        try await node.kubectl(["delete", "pod", "early"])
        var heldBefore: [[String]] = []
        for name in ["a", "b"] { heldBefore.append(Self.heldDevices(try await node.pod(name))) }
        #expect(heldBefore == [[devices + "/" + aSensor.dropFirst(5), devices + "/radio0"].sorted(), [devices + "/" + bSensor.dropFirst(5)]])
        node.killAgent()
        try node.startAgent()
        try await node.apply(Self.devicePod("c", sensors: 1, script: check).replacingOccurrences(of: "IMAGE", with: image))
        try await node.waitForPod("c", seconds: 90) { PodNode.status($0, "app")?.state?.running != nil }
        var c = ""
        for _ in 0..<50 where !c.contains("CapEff") {
            c = try await node.kubectl(["logs", "c"])
            try await Task.sleep(for: .milliseconds(200))
        }
        let cSensor = try #require(c.firstMatch(of: #/sensors=(\/dev\/sensor\d) /#)?.output.1).description
        #expect(cSensor == "/dev/sensor0", "a restarted agent gave away a held device: \(cSensor)")
        // The restarted agent reports the same devices for A and B.
        for (index, name) in ["a", "b"].enumerated() {
            let pod = try await node.waitForPod(name, seconds: 30) { !Self.heldDevices($0).isEmpty }
            #expect(Self.heldDevices(pod) == heldBefore[index])
        }
        #expect(try await node.pod("a").status?.containerStatuses?.first?.restartCount == 0)

        // Hotplug: A's sensor unplugged: allocatable drops, A is told, its status says Unhealthy.
        unlink(devices + "/" + String(aSensor.dropFirst(5)))
        for _ in 0..<100 where try await allocatable()["devices.iotkube.io/sensor"]?.value != 2 { try await Task.sleep(for: .milliseconds(300)) }
        #expect(try await allocatable()["devices.iotkube.io/sensor"]?.value == 2)
        let unhealthy = try await node.waitForPod("a", seconds: 30) { pod in
            "\(pod.status?.containerStatuses?.first?.allocatedResourcesStatus ?? [])".contains("Unhealthy")
        }
        let health = "\(unhealthy.status?.containerStatuses?.first?.allocatedResourcesStatus ?? [])"
        // The pod and the Node as the official schemas have them (allocatedResourcesStatus is the
        // kubelet's since Kubernetes 1.31).
        let documents = [("pod-a", Array(try await node.kubectl(["get", "pod", "a", "-o", "json"]).utf8)),
                         ("node", Array(try await node.kubectl(["get", "node", "device-board", "-o", "json"]).utf8))]
        let schemaFailures = try SchemaCheck.failures(documents.map { (name: $0.0, json: $0.1) }, version: "1.33.0")
        #expect(schemaFailures == [], "\(schemaFailures)\n\(documents.map { String(decoding: $0.1, as: UTF8.self) }.joined(separator: "\n"))")
        #expect(health.contains(devices + "/" + String(aSensor.dropFirst(5))) && health.contains("devices.iotkube.io/radio"), "\(health)")
        var events = ""
        for _ in 0..<50 where !events.contains("DeviceUnhealthy") {
            events = try await node.kubectl(["get", "events", "--field-selector", "involvedObject.name=a"])
            try await Task.sleep(for: .milliseconds(300))
        }
        #expect(events.contains("DeviceUnhealthy") && events.contains("was unplugged"), "\(events)")
        // Its pod ends: the device is free (and gone), so nothing more than the two present remain allocatable.
        try await node.kubectl(["delete", "pod", "a", "b", "c", "plain"])
        for _ in 0..<100 where try await nodeStatus()?.capacity?["devices.iotkube.io/sensor"]?.value != 2 { try await Task.sleep(for: .milliseconds(300)) }
        let capacity = try await nodeStatus()?.capacity
        #expect(capacity?["devices.iotkube.io/sensor"]?.value == 2)

        // A pod that ends gives its devices back at once, though it is not deleted.
        try await node.apply(Self.devicePod("oneshot", sensors: 2, restartPolicy: "Never", script: "true").replacingOccurrences(of: "IMAGE", with: image))
        try await node.waitForPod("oneshot", seconds: 90) { $0.status?.phase == .succeeded }
        try await node.apply(Self.devicePod("after", sensors: 2, script: "sleep 100000").replacingOccurrences(of: "IMAGE", with: image))
        try await node.waitForPod("after", seconds: 90) { PodNode.status($0, "app")?.state?.running != nil }

        // A class taken out of agent.yaml is no longer offered: the Node says 0, not the old count.
        node.killAgent()
        let configPath = node.configDirectory + "/agent.yaml"
        let config = try String(contentsOfFile: configPath, encoding: .utf8)
        try config.replacingOccurrences(of: "  - name: radio\n    paths: [\"\(devices)/radio*\"]\n", with: "").write(toFile: configPath, atomically: true, encoding: .utf8)
        #expect(try String(contentsOfFile: configPath, encoding: .utf8) != config)
        try node.startAgent()
        for _ in 0..<100 where try await nodeStatus()?.capacity?["devices.iotkube.io/radio"]?.value != 0 { try await Task.sleep(for: .milliseconds(300)) }
        #expect(try await nodeStatus()?.capacity?["devices.iotkube.io/radio"]?.value == 0)
        #expect(try await nodeStatus()?.allocatable?["devices.iotkube.io/radio"]?.value == 0)
        await node.shutdown()
    }
}
