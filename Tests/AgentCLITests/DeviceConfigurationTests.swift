import Foundation
import IotkubeTestSupport
import KubeModel
import Testing

@testable import Agent

/// agent.yaml's `devices`: a section the agent would have to guess about stops it at start with
/// the file, the line and the field named; a good one round-trips through the written file.
@Suite struct DeviceConfigurationTests {
    @Test(arguments: [
        ("devices:\n  - name: I2C\n    paths: [/dev/i2c-*]\n", "line 5: devices[0].name: \"I2C\" must be 1-63 lower-case letters"),
        ("devices:\n  - name: gpio\n    paths: [/dev/gpiochip*]\n  - name: uart\n    paths: [dev/ttyS*]\n", "line 7: devices[1].paths[0] (uart): \"dev/ttyS*\" is not an absolute path"),
        ("devices:\n  - name: uart\n    paths: [/dev/../etc/*]\n", "devices[0].paths[0] (uart): \"/dev/../etc/*\" contains \"..\""),
        ("devices:\n  - name: uart\n", "line 5: devices[0] (uart): give paths (globs of device nodes) or a udev property"),
        ("devices:\n  - name: uart\n    paths: [/dev/ttyS*]\n    perContainer: 0\n", "devices[0].perContainer (uart): 0 must be 1 to 1000"),
        ("devices:\n  - name: uart\n    paths: [/dev/ttyS*]\n    perContainer: 99999999999999999999\n", "devices[0].perContainer"),
        ("devices:\n  - name: ftdi\n    vendorID: \"403\"\n", "devices[0].vendorID (ftdi): \"403\" is not four hex digits"),
        // Unquoted, 0403 is a YAML number: refused rather than read as 403 or 259.
        ("devices:\n  - name: ftdi\n    vendorID: 0403\n", "line 6: devices[0].vendorID: expected string, found number"),
        ("devices:\n  - name: uart\n    paths: [/dev/ttyS*]\n  - name: uart\n    paths: [/dev/ttyUSB*]\n", "line 7: devices[1].name: \"uart\" is given twice"),
        ("devices:\n  - name: uart\n    path: [/dev/ttyS*]\n", "devices[0].path"),
        ("devices:\n  name: uart\n", "devices"),
        ("builtinDevices: maybe\n", "line 4: builtinDevices"),
    ])
    func aMalformedDevicesSectionStopsTheAgentNamingWhere(_ section: String, _ message: String) throws {
        let path = try AgentNetworkConfigurationTests.file(section)
        #expect { _ = try AgentConfiguration.load(path) } throws: { "\($0)".contains(path) && "\($0)".contains(message) }
    }

    @Test func builtinClassesAreOnUnlessSwitchedOffAndAConfiguredClassReplacesOne() throws {
        let path = try AgentNetworkConfigurationTests.file("""
            devices:
              - name: serial
                paths: [/dev/ttyUSB*]
                vendorID: "0403"
                perContainer: 2
              - name: lidar
                subsystem: tty
                grouped: true

            """)
        let configuration = try AgentConfiguration.load(path)
        let names = configuration.deviceClasses.map(\.name)
        #expect(names == ["gpio", "i2c", "spi", "video", "camera", "serial", "lidar"])
        let serial = configuration.deviceClasses.first { $0.name == "serial" }
        #expect(serial?.paths == ["/dev/ttyUSB*"] && serial?.vendorID == "0403" && serial?.perContainer == 2)
        #expect(configuration.deviceClasses.first { $0.name == "lidar" }?.paths == nil)
        #expect(serial?.environmentName == "IOTKUBE_DEVICES_SERIAL" && DeviceClass(name: "usb-cam").environmentName == "IOTKUBE_DEVICES_USB_CAM")
        // What `join` writes reads back the same.
        let rewritten = NSTemporaryDirectory() + "iotkube-agent-\(UUID().uuidString).yaml"
        var off = configuration
        off.builtinDevices = false
        try off.yaml.write(toFile: rewritten, atomically: true, encoding: .utf8)
        let reread = try AgentConfiguration.load(rewritten)
        #expect(reread.devices == configuration.devices && reread.builtinDevices == false)
        #expect(reread.deviceClasses.map(\.name) == ["serial", "lidar"])
    }
}
