import Foundation
import IotkubeTestSupport
import KubeModel
import Testing

@testable import Agent

/// What an attack review found: overlapping classes, numbers reused after an unplug, sidecars,
/// a checkpoint that cannot be written, re-admission after a restart, default discovery.
@Suite(.ownThread, .enabled(if: getuid() == 0, "needs root (mknod)"))
struct DeviceAssignmentSafetyTests {
    let directory = NSTemporaryDirectory() + "iotkube-devices-\(UUID().uuidString.prefix(8))"

    init() throws {
        try FileManager.default.createDirectory(atPath: directory + "/dev", withIntermediateDirectories: true)
        for (name, minor) in [("sensor0", 3), ("sensor1", 5), ("sensor2", 7)] {
            guard mknod(directory + "/dev/" + name, S_IFCHR | 0o640, DeviceManagerTests.deviceNumber(1, UInt32(minor))) == 0 else { throw TestFailure("mknod: \(errno)") }
        }
    }

    /// Two classes that find the same node (the built-in video and camera do) never give it to two pods.
    @Test func aNodeFoundByTwoClassesGoesToOneHolder() async throws {
        let devices = DeviceManager(classes: [DeviceClass(name: "all", paths: [directory + "/dev/sensor*"]),
                                              DeviceClass(name: "first", paths: [directory + "/dev/sensor0"]),
                                              DeviceClass(name: "group", paths: [directory + "/dev/sensor*"], grouped: true)],
                                    checkpointPath: directory + "/state/devices.json")
        #expect(await devices.allocate(DeviceManagerTests.pod("a", ["devices.iotkube.io/first": 1])) == nil)
        let refused = await devices.allocate(DeviceManagerTests.pod("b", ["devices.iotkube.io/all": 3]))
        #expect(refused?.message.contains("Requested: 3, Available: 2") == true, "\(String(describing: refused))")
        #expect(await devices.allocate(DeviceManagerTests.pod("c", ["devices.iotkube.io/group": 1]))?.reason == "UnexpectedAdmissionError")
        #expect(await devices.allocate(DeviceManagerTests.pod("d", ["devices.iotkube.io/all": 2])) == nil)
        #expect(try devices.devices(pod: "d", container: "app")[0].nodes.allSatisfy { $0.minor != 3 })
    }

    /// A held device unplugged and another one plugged in with its numbers (another path, another
    /// class): the holder's container still has the numbers allowed, so nobody else gets them.
    @Test func numbersOfAnUnpluggedHeldDeviceStayReserved() async throws {
        let devices = DeviceManager(classes: [DeviceClass(name: "sensor", paths: [directory + "/dev/sensor0"]),
                                              DeviceClass(name: "other", paths: [directory + "/dev/other*"])],
                                    checkpointPath: directory + "/state/devices.json")
        #expect(await devices.allocate(DeviceManagerTests.pod("a", ["devices.iotkube.io/sensor": 1])) == nil)
        unlink(directory + "/dev/sensor0")
        #expect(mknod(directory + "/dev/other0", S_IFCHR | 0o640, DeviceManagerTests.deviceNumber(1, 3)) == 0)
        devices.rescan()
        #expect(devices.resources()["devices.iotkube.io/other"]?.allocatable == 1)
        #expect(await devices.allocate(DeviceManagerTests.pod("b", ["devices.iotkube.io/other": 1]))?.reason == "UnexpectedAdmissionError")
        devices.release(pod: "a")
        #expect(await devices.allocate(DeviceManagerTests.pod("b", ["devices.iotkube.io/other": 1])) == nil)
    }

    /// A sidecar runs beside the app container: both count, and they get distinct devices.
    @Test func sidecarsCountWithTheAppContainers() async throws {
        var pod = DeviceManagerTests.pod("a", ["devices.iotkube.io/sensor": 1])
        var sidecar = Container(name: "sidecar", image: "busybox")
        sidecar.restartPolicy = .always
        sidecar.resources = ResourceRequirements(limits: ["devices.iotkube.io/sensor": "1"])
        var setup = Container(name: "setup", image: "busybox")
        setup.resources = ResourceRequirements(limits: ["devices.iotkube.io/sensor": "2"])
        pod.spec?.initContainers = [sidecar, setup]
        // app 1 + sidecar 1, or setup 2 + the sidecar before it: 3.
        #expect(pod.extendedRequests["devices.iotkube.io/sensor"] == 3)
        let devices = DeviceManager(classes: [DeviceClass(name: "sensor", paths: [directory + "/dev/sensor*"])], checkpointPath: directory + "/state/devices.json")
        #expect(await devices.allocate(pod) == nil)
        let app = try devices.devices(pod: "a", container: "app")[0].nodes[0].path
        let side = try devices.devices(pod: "a", container: "sidecar")[0].nodes[0].path
        #expect(app != side)
    }

    /// An assignment that cannot be kept on disk is not made (after a restart it would be lost).
    @Test func anAssignmentThatCannotBeWrittenIsRefused() async throws {
        try "not a directory".write(toFile: directory + "/state", atomically: true, encoding: .utf8)
        let devices = DeviceManager(classes: [DeviceClass(name: "sensor", paths: [directory + "/dev/sensor*"])], checkpointPath: directory + "/state/devices.json")
        let refused = await devices.allocate(DeviceManagerTests.pod("a", ["devices.iotkube.io/sensor": 1]))
        #expect(refused?.reason == "UnexpectedAdmissionError" && refused?.message.contains("device assignments not written") == true, "\(String(describing: refused))")
        #expect(devices.holders.isEmpty)
    }

    /// A pod that holds its devices (an agent restart) is admitted while they are not back yet.
    @Test func aHolderIsAdmittedAgainWhileItsDeviceIsAway() {
        let allocatable: [String: Quantity] = ["cpu": "2", "memory": "1Gi", "pods": "10", "devices.iotkube.io/sensor": "0"]
        let pod = DeviceManagerTests.pod("a", ["devices.iotkube.io/sensor": 1])
        #expect(PodAdmission.check(pod, admitted: [], allocatable: allocatable)?.reason == "OutOfdevices.iotkube.io/sensor")
        #expect(PodAdmission.check(pod, admitted: [], allocatable: allocatable, holdsDevices: true) == nil)
    }

    /// Under allowed hostPaths, the device plugin directory stays out of reach (a pod there could
    /// register a plugin that mounts any host path into containers), also through a link.
    @Test func noAllowedHostPathReachesThePluginDirectory() throws {
        let plugins = directory + "/kubelet/device-plugins"
        try FileManager.default.createDirectory(atPath: plugins, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: directory + "/alias", withDestinationPath: directory + "/kubelet")
        for allowed in [directory, plugins, plugins + "/sub", directory + "/alias", directory + "/alias/device-plugins"] {
            let path = try AgentNetworkConfigurationTests.file("devicePluginDirectory: \"\(plugins)\"\nallowedHostPaths: [\"\(allowed)\"]\n")
            #expect { _ = try AgentConfiguration.load(path) } throws: { "\($0)".contains("reaches the device plugin directory") }
        }
        let fine = try AgentNetworkConfigurationTests.file("devicePluginDirectory: \"\(plugins)\"\nallowedHostPaths: [\"\(directory)/dev\"]\n")
        _ = try AgentConfiguration.load(fine)
        let off = try AgentNetworkConfigurationTests.file("devicePluginDirectory: \"\"\nallowedHostPaths: [\"\(directory)\"]\n")
        _ = try AgentConfiguration.load(off)
    }

    /// Nor the image pre-load directory: a pod writing an archive there would choose what other
    /// pods run under any image name.
    @Test func noAllowedHostPathReachesTheImagePreloadDirectory() throws {
        let state = directory + "/state"
        let preload = state + "/images-preload"
        try FileManager.default.createDirectory(atPath: preload, withIntermediateDirectories: true)
        try? FileManager.default.createSymbolicLink(atPath: directory + "/state-alias", withDestinationPath: state)
        for allowed in [directory, state, preload, preload + "/sub", directory + "/state-alias/images-preload"] {
            // The default directory, under stateDir.
            let path = try AgentNetworkConfigurationTests.file("stateDir: \"\(state)\"\ndevicePluginDirectory: \"\"\nallowedHostPaths: [\"\(allowed)\"]\n")
            #expect { _ = try AgentConfiguration.load(path) } throws: { "\($0)".contains("reaches the image pre-load directory") }
        }
        let fine = try AgentNetworkConfigurationTests.file("stateDir: \"\(state)\"\ndevicePluginDirectory: \"\"\nallowedHostPaths: [\"\(state)/other\"]\n")
        _ = try AgentConfiguration.load(fine)
        let off = try AgentNetworkConfigurationTests.file("stateDir: \"\(state)\"\ndevicePluginDirectory: \"\"\nimagePreloadDirectory: \"\"\nallowedHostPaths: [\"\(directory)\"]\n")
        _ = try AgentConfiguration.load(off)
        let relative = try AgentNetworkConfigurationTests.file("imagePreloadDirectory: \"preload\"\n")
        #expect { _ = try AgentConfiguration.load(relative) } throws: { "\($0)".contains("imagePreloadDirectory: \"preload\" must be an absolute path") }
    }

    /// Found by udev properties alone, memory devices, terminals and links are never offered.
    @Test func discoveryByPropertiesLeavesOutSystemNodes() {
        let devices = DeviceManager(classes: [DeviceClass(name: "mem", subsystem: "mem"), DeviceClass(name: "tty", subsystem: "tty")],
                                    checkpointPath: directory + "/state/devices.json")
        #expect(devices.resources()["devices.iotkube.io/mem"]?.capacity == 0)
        let ttys = DeviceManager.systemDeviceNodes().compactMap(HostDevice.at).filter { $0.type == "c" && ($0.major == 5 || $0.major == 4 && $0.minor < 64) }
        #expect(ttys.isEmpty, "\(ttys.map(\.path))")
        #expect(devices.discover(devices.classes[1]).allSatisfy { !["/dev/console", "/dev/tty", "/dev/ptmx"].contains($0.key) })
    }
}

/// Device plugin resources in the device manager, without a plugin process: what is kept across
/// a restart, and an Allocate that cannot be made.
@Suite struct DevicePluginStateTests {
    let directory = NSTemporaryDirectory() + "iotkube-plugin-state-\(UUID().uuidString.prefix(8))"

    /// After a restart a plugin's resource is known (none allocatable) until the plugin registers
    /// again: a pod asking for it is refused instead of running without its device.
    @Test func aPluginResourceIsKnownAcrossARestart() async {
        let devices = DeviceManager(classes: [], checkpointPath: directory + "/devices.json")
        devices.registerPlugin(resource: "example.com/widget", socket: directory + "/widget.sock", options: .init())
        devices.updatePlugin(resource: "example.com/widget", socket: directory + "/widget.sock", devices: [("w0", true), ("w1", false)])
        #expect(devices.resources()["example.com/widget"] == DeviceAmounts(capacity: 2, allocatable: 1))
        let restarted = DeviceManager(classes: [], checkpointPath: directory + "/devices.json")
        #expect(restarted.resources()["example.com/widget"] == DeviceAmounts(capacity: 0, allocatable: 0))
        let allocatable = restarted.resources().mapValues { Quantity($0.allocatable) }.merging(["pods": "10"]) { $1 }
        let pod = DeviceManagerTests.pod("a", ["example.com/widget": 1])
        #expect(PodAdmission.check(pod, admitted: [], allocatable: allocatable)?.reason == "OutOfexample.com/widget")
    }

    /// A plugin that does not answer Allocate: the pod is refused with the kubelet's words and
    /// holds nothing.
    @Test func anAllocateThatFailsRefusesThePod() async {
        let devices = DeviceManager(classes: [], checkpointPath: directory + "/devices.json")
        devices.registerPlugin(resource: "example.com/widget", socket: directory + "/absent.sock", options: .init())
        devices.updatePlugin(resource: "example.com/widget", socket: directory + "/absent.sock", devices: [("w0", true)])
        let refused = await devices.allocate(DeviceManagerTests.pod("a", ["example.com/widget": 1]))
        #expect(refused?.reason == "UnexpectedAdmissionError" && refused?.message.hasPrefix("Allocate failed due to rpc error: ") == true, "\(String(describing: refused))")
        #expect(devices.holders.isEmpty)
    }
}
