import KubeModel

/// A kind of host device that pods may ask for (agent.yaml `devices`), advertised as the
/// extended resource `devices.iotkube.io/<name>`: the device nodes its `paths` globs match,
/// narrowed by the udev properties given (sysfs subsystem, USB vendor and product id).
public struct DeviceClass: Codable, Sendable, Hashable {
    /// The resource's name after `devices.iotkube.io/`: lower-case letters, digits and `-`.
    public var name: String
    /// Absolute path globs of device nodes (`/dev/i2c-*`); without them, the device nodes in /dev
    /// and one level below (terminals, ptys and memory devices left out) are matched by the udev properties.
    public var paths: [String]?
    /// The device's sysfs subsystem, as udev's SUBSYSTEM (`i2c-dev`, `tty`, `video4linux`).
    public var subsystem: String?
    /// The USB vendor id (udev ID_VENDOR_ID, four hex digits) of the device or a parent.
    public var vendorID: String?
    /// The USB product id (udev ID_MODEL_ID) of the device or a parent.
    public var productID: String?
    /// How many containers may hold one device at a time (default 1).
    public var perContainer: Int?
    /// All matched nodes together are one device (a camera: its video, media and subdev nodes).
    public var grouped: Bool?
    public var unknownFields = UnknownFields()

    public static let resourcePrefix = "devices.iotkube.io/"

    public init(name: String, paths: [String]? = nil, subsystem: String? = nil, vendorID: String? = nil, productID: String? = nil,
                perContainer: Int? = nil, grouped: Bool? = nil) {
        self.name = name
        self.paths = paths
        self.subsystem = subsystem
        self.vendorID = vendorID
        self.productID = productID
        self.perContainer = perContainer
        self.grouped = grouped
    }

    public var resourceName: String { Self.resourcePrefix + name }

    /// The environment variable listing a container's devices of this class (`IOTKUBE_DEVICES_I2C`).
    public var environmentName: String {
        "IOTKUBE_DEVICES_" + String(name.uppercased().map { $0 == "-" ? "_" : $0 })
    }

    /// What is wrong with this class, naming `field` (`devices[2]`); nil when it is usable.
    func problem(field: String) -> String? {
        let validName = !name.isEmpty && name.count <= 63 && name.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" }
            && name.first != "-" && name.last != "-"
        if !validName { return "\(field).name: \"\(name)\" must be 1-63 lower-case letters, digits or '-', starting and ending with a letter or digit" }
        if paths == nil && subsystem == nil && vendorID == nil && productID == nil {
            return "\(field) (\(name)): give paths (globs of device nodes) or a udev property (subsystem, vendorID, productID)"
        }
        if let paths, paths.isEmpty { return "\(field).paths (\(name)): is empty" }
        for (index, path) in (paths ?? []).enumerated() {
            if !path.hasPrefix("/") { return "\(field).paths[\(index)] (\(name)): \"\(path)\" is not an absolute path" }
            if path.split(separator: "/").contains("..") { return "\(field).paths[\(index)] (\(name)): \"\(path)\" contains \"..\"" }
        }
        for (key, value) in [("vendorID", vendorID), ("productID", productID)] {
            guard let value else { continue }
            if value.count != 4 || !value.allSatisfy(\.isHexDigit) { return "\(field).\(key) (\(name)): \"\(value)\" is not four hex digits (like 0403)" }
        }
        if let subsystem, subsystem.isEmpty || subsystem.contains("/") { return "\(field).subsystem (\(name)): \"\(subsystem)\" is not a subsystem name" }
        if let perContainer, !(1...1000).contains(perContainer) { return "\(field).perContainer (\(name)): \(perContainer) must be 1 to 1000" }
        return nil
    }

    /// What a Raspberry Pi user expects to find (agent.yaml `builtinDevices: false` turns these
    /// off; a configured class of the same name replaces one).
    public static let builtin: [DeviceClass] = [
        DeviceClass(name: "gpio", paths: ["/dev/gpiochip*"]),
        DeviceClass(name: "i2c", paths: ["/dev/i2c-*"]),
        DeviceClass(name: "spi", paths: ["/dev/spidev*"]),
        DeviceClass(name: "serial", paths: ["/dev/ttyAMA*", "/dev/ttyUSB*", "/dev/ttyACM*"]),
        DeviceClass(name: "video", paths: ["/dev/video*"]),
        // libcamera needs the whole stack at once: one camera is all of these together.
        DeviceClass(name: "camera", paths: ["/dev/media*", "/dev/video*", "/dev/v4l-subdev*", "/dev/vchiq", "/dev/dma_heap/*"], grouped: true),
    ]

    /// The classes in effect: the built-in ones (unless switched off) with configured ones replacing
    /// them by name, then the other configured ones.
    public static func effective(configured: [DeviceClass]?, builtin useBuiltin: Bool?) -> [DeviceClass] {
        let configured = configured ?? []
        let names = Set(configured.map(\.name))
        let defaults = useBuiltin == false ? [] : builtin.filter { !names.contains($0.name) }
        return defaults + configured
    }
}
