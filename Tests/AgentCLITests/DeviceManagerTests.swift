import Foundation
import IotkubeTestSupport
import KubeModel
import Runtime
import Testing

@testable import Agent

/// The device manager on real device nodes made with mknod (real majors: 1:3 null, 1:5 zero,
/// 1:7 full): discovery by glob and udev property, sharing, assignment that survives a restart,
/// release, and hotplug.
@Suite(.ownThread, .enabled(if: getuid() == 0, "needs root (mknod)"))
struct DeviceManagerTests {
    let directory = NSTemporaryDirectory() + "iotkube-devices-\(UUID().uuidString.prefix(8))"

    init() throws {
        try FileManager.default.createDirectory(atPath: directory + "/dev", withIntermediateDirectories: true)
        for (name, minor) in [("sensor0", 3), ("sensor1", 5), ("sensor2", 7)] {
            guard mknod(directory + "/dev/" + name, S_IFCHR | 0o640, Self.deviceNumber(1, UInt32(minor))) == 0 else { throw TestFailure("mknod: \(errno)") }
        }
        // Not a device: never offered.
        FileManager.default.createFile(atPath: directory + "/dev/sensor-notes", contents: Data("x".utf8))
    }

    /// glibc's dev_t of major:minor (makedev(3) is a macro Swift does not import).
    static func deviceNumber(_ major: UInt32, _ minor: UInt32) -> dev_t {
        let (major, minor) = (UInt64(major), UInt64(minor))
        return dev_t((minor & 0xFF) | ((major & 0xFFF) << 8) | ((minor & ~UInt64(0xFF)) << 12) | ((major & ~UInt64(0xFFF)) << 32))
    }

    static func pod(_ uid: String, _ requests: [String: Int], initRequests: [String: Int] = [:]) -> Pod {
        func container(_ name: String, _ requests: [String: Int]) -> Container {
            var container = Container(name: name, image: "busybox")
            let limits = Dictionary(uniqueKeysWithValues: requests.map { ($0.key, Quantity(Int64($0.value))) })
            container.resources = ResourceRequirements(limits: limits)
            return container
        }
        var spec = PodSpec(containers: [container("app", requests)])
        if !initRequests.isEmpty { spec.initContainers = [container("setup", initRequests)] }
        var metadata = ObjectMeta(name: "pod-\(uid)")
        metadata.uid = uid
        return Pod(metadata: metadata, spec: spec)
    }

    func manager(perContainer: Int? = nil, subsystem: String? = nil, grouped: Bool? = nil) -> DeviceManager {
        let sensor = DeviceClass(name: "sensor", paths: [directory + "/dev/sensor*"], subsystem: subsystem, perContainer: perContainer, grouped: grouped)
        return DeviceManager(classes: [sensor], checkpointPath: directory + "/state/devices.json")
    }

    @Test func podsGetDistinctDevicesUntilNoneAreLeftAndKeepThemAcrossARestart() async throws {
        let devices = manager()
        #expect(devices.resources()["devices.iotkube.io/sensor"] == DeviceAmounts(capacity: 3, allocatable: 3))
        #expect(await devices.allocate(Self.pod("a", ["devices.iotkube.io/sensor": 2])) == nil)
        let held = try devices.devices(pod: "a", container: "app")
        #expect(held.count == 1 && held[0].nodes.count == 2)
        #expect(Set(held[0].nodes.map(\.path)).count == 2)
        #expect(held[0].nodes.allSatisfy { $0.type == "c" && $0.major == 1 && $0.mode == 0o640 })
        #expect(held[0].nodes[0].containerPath == "/dev/" + held[0].nodes[0].path.split(separator: "/").last!)
        // One left: a pod asking for two is refused with the kubelet's words.
        let refused = await devices.allocate(Self.pod("b", ["devices.iotkube.io/sensor": 2]))
        #expect(refused?.reason == "UnexpectedAdmissionError")
        #expect(refused?.message == "Allocate failed due to requested number of devices unavailable for devices.iotkube.io/sensor. Requested: 2, Available: 1, which is unexpected")
        #expect(try devices.devices(pod: "b", container: "app").isEmpty)
        // Asking again for a pod that holds devices keeps them.
        #expect(await devices.allocate(Self.pod("a", ["devices.iotkube.io/sensor": 2])) == nil)
        #expect(try devices.devices(pod: "a", container: "app") == held)
        // A restarted agent reads the same assignment back.
        let restarted = manager()
        #expect(restarted.loadError == nil)
        #expect(try restarted.devices(pod: "a", container: "app") == held)
        #expect(await restarted.allocate(Self.pod("c", ["devices.iotkube.io/sensor": 1])) == nil)
        let third = try restarted.devices(pod: "c", container: "app")[0].nodes[0].path
        #expect(!held[0].nodes.map(\.path).contains(third))
        // Released when the pod ends; pods gone while the agent was down are released at start.
        restarted.release(pod: "a")
        #expect(await restarted.allocate(Self.pod("b", ["devices.iotkube.io/sensor": 2])) == nil)
        restarted.retain(pods: ["b"])
        #expect(restarted.holders == ["b"])
        #expect(manager().holders == ["b"])
    }

    @Test func aDamagedAssignmentFileIsReportedAndTheAgentStartsWithNone() async throws {
        try FileManager.default.createDirectory(atPath: directory + "/state", withIntermediateDirectories: true)
        try Data("{\"assignments\": [{\"pod\": 3".utf8).write(to: URL(fileURLWithPath: directory + "/state/devices.json"))
        let devices = manager()
        #expect(devices.loadError?.contains(directory + "/state/devices.json") == true)
        #expect(devices.holders.isEmpty)
        #expect(await devices.allocate(Self.pod("a", ["devices.iotkube.io/sensor": 3])) == nil)
    }

    @Test func sharedDevicesGoToAsManyContainersAsAllowedAndInitContainersReuseThePods() async throws {
        let devices = manager(perContainer: 2)
        #expect(devices.resources()["devices.iotkube.io/sensor"] == DeviceAmounts(capacity: 6, allocatable: 6))
        // Spread: each pod gets the least used device.
        for uid in ["a", "b", "c"] { #expect(await devices.allocate(Self.pod(uid, ["devices.iotkube.io/sensor": 1])) == nil) }
        let paths = try ["a", "b", "c"].map { try devices.devices(pod: $0, container: "app")[0].nodes[0].path }
        #expect(Set(paths).count == 3)
        // A container never gets the same device twice: three distinct ones are left (one share each).
        #expect(await devices.allocate(Self.pod("d", ["devices.iotkube.io/sensor": 3])) == nil)
        #expect(await devices.allocate(Self.pod("e", ["devices.iotkube.io/sensor": 1]))?.reason == "UnexpectedAdmissionError")
        // An init container may use what its own pod's app container holds.
        let reuse = manager(perContainer: 1)
        reuse.release(pod: "a"); reuse.release(pod: "b"); reuse.release(pod: "c"); reuse.release(pod: "d")
        #expect(await reuse.allocate(Self.pod("f", ["devices.iotkube.io/sensor": 3], initRequests: ["devices.iotkube.io/sensor": 3])) == nil)
        #expect(try reuse.devices(pod: "f", container: "setup")[0].nodes.count == 3)
    }

    @Test func udevPropertiesNarrowTheMatchAndAGroupIsOneDevice() async throws {
        // 1:3, 1:5 and 1:7 belong to the "mem" subsystem.
        #expect(manager(subsystem: "mem").resources()["devices.iotkube.io/sensor"] == DeviceAmounts(capacity: 3, allocatable: 3))
        #expect(manager(subsystem: "tty").resources()["devices.iotkube.io/sensor"] == DeviceAmounts(capacity: 0, allocatable: 0))
        let usb = DeviceManager(classes: [DeviceClass(name: "ftdi", paths: [directory + "/dev/sensor*"], vendorID: "0403")], checkpointPath: directory + "/state/usb.json")
        #expect(usb.resources()["devices.iotkube.io/ftdi"] == DeviceAmounts(capacity: 0, allocatable: 0))
        let camera = manager(grouped: true)
        #expect(camera.resources()["devices.iotkube.io/sensor"] == DeviceAmounts(capacity: 1, allocatable: 1))
        #expect(await camera.allocate(Self.pod("cam", ["devices.iotkube.io/sensor": 1])) == nil)
        #expect(try camera.devices(pod: "cam", container: "app")[0].nodes.count == 3)
    }

    @Test func anUnpluggedDeviceLeavesAllocatableAndIsReportedForItsContainer() async throws {
        let devices = manager()
        #expect(await devices.allocate(Self.pod("a", ["devices.iotkube.io/sensor": 1])) == nil)
        let held = try devices.devices(pod: "a", container: "app")[0].nodes[0].path
        let free = (0...2).map { directory + "/dev/sensor\($0)" }.first { $0 != held }!
        // A free device unplugged: one less of everything.
        unlink(free)
        var change = devices.rescan()
        #expect(change.resourcesChanged && change.unplugged.isEmpty)
        #expect(devices.resources()["devices.iotkube.io/sensor"] == DeviceAmounts(capacity: 2, allocatable: 2))
        // The held one unplugged: still counted in capacity (held), not allocatable; its container is told.
        unlink(held)
        change = devices.rescan()
        #expect(change.unplugged.map(\.device) == [held] && change.unplugged.map(\.container) == ["app"])
        #expect(devices.resources()["devices.iotkube.io/sensor"] == DeviceAmounts(capacity: 2, allocatable: 1))
        #expect(!devices.isPresent(resource: "devices.iotkube.io/sensor", device: held))
        #expect { _ = try devices.devices(pod: "a", container: "app") } throws: { "\($0)".contains("\(held), assigned to this container, is not on the node") }
        // Plugged back in.
        #expect(mknod(held, S_IFCHR | 0o640, Self.deviceNumber(1, 3)) == 0)
        change = devices.rescan()
        #expect(change.replugged.map(\.device) == [held])
        #expect(devices.isPresent(resource: "devices.iotkube.io/sensor", device: held))
        #expect(devices.resources()["devices.iotkube.io/sensor"] == DeviceAmounts(capacity: 2, allocatable: 2))
    }

    @Test func admissionRefusesUnknownDeviceClassesAndMoreThanTheNodeHas() {
        let allocatable: [String: Quantity] = ["cpu": "2", "memory": "1Gi", "pods": "10", "devices.iotkube.io/sensor": "2"]
        let unknown = PodAdmission.check(Self.pod("a", ["devices.iotkube.io/lidar": 1]), admitted: [], allocatable: allocatable)
        #expect(unknown?.reason == "OutOfdevices.iotkube.io/lidar")
        #expect(unknown?.message == "Pod was rejected: Node didn't have enough resource: devices.iotkube.io/lidar, requested: 1, used: 0, capacity: 0")
        let admitted = [Self.pod("b", ["devices.iotkube.io/sensor": 1])]
        let tooMany = PodAdmission.check(Self.pod("c", ["devices.iotkube.io/sensor": 2]), admitted: admitted, allocatable: allocatable)
        #expect(tooMany?.message == "Pod was rejected: Node didn't have enough resource: devices.iotkube.io/sensor, requested: 2, used: 1, capacity: 2")
        #expect(PodAdmission.check(Self.pod("d", ["devices.iotkube.io/sensor": 1]), admitted: admitted, allocatable: allocatable) == nil)
        // Another domain's resource the node does not know (a scheduler extender's) is left alone, as by the kubelet.
        #expect(PodAdmission.check(Self.pod("e", ["example.com/widget": 1]), admitted: [], allocatable: allocatable) == nil)
    }

    @Test func aContainersSpecHasExactlyItsDevicesAndTheirVariable() async throws {
        let devices = manager()
        var pod = Self.pod("a", ["devices.iotkube.io/sensor": 2])
        pod.spec?.securityContext = PodSecurityContext()
        pod.spec?.securityContext?.fsGroup = 2000
        #expect(await devices.allocate(pod) == nil)
        let held = try devices.devices(pod: "a", container: "app")
        var spec = DefaultSpec.make(args: ["true"])
        var linux = spec.linux!
        ContainerSpecBuilder.addDevices(held, to: &spec, linux: &linux, group: 2000)
        let nodes = held[0].nodes
        #expect(linux.devices?.map(\.path) == nodes.map(\.containerPath))
        #expect(linux.devices?.allSatisfy { $0.gid == 2000 && $0.fileMode == 0o660 && $0.type == "c" && $0.major == 1 } == true)
        let added = linux.resources?.devices?.suffix(2).map { "\($0.type ?? "") \($0.major ?? -1):\($0.minor ?? -1) \($0.allow)" }
        #expect(added == nodes.map { "c 1:\($0.minor) true" })
        #expect(spec.process?.env?.contains("IOTKUBE_DEVICES_SENSOR=" + nodes.map(\.containerPath).joined(separator: " ")) == true)
    }
}
