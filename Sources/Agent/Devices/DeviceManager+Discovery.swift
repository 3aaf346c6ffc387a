#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

// Finding a class's devices on the host.
extension DeviceManager {
    /// The devices of one class on the host now, in path order, each major:minor once; never
    /// a system console (`/sys/class/tty/console/active`: a pod could read an administrator's
    /// keystrokes on a serial console).
    func discover(_ deviceClass: DeviceClass) -> [Device] {
        var nodes: [HostDevice] = []
        var seen = Set(Self.consoleNumbers(sysfs: sysfs))
        let candidates = deviceClass.paths.map { $0.flatMap(Self.glob) } ?? Self.systemDeviceNodes()
        for path in candidates {
            guard let device = HostDevice.at(path), seen.insert(device.number).inserted else { continue }
            if let subsystem = deviceClass.subsystem, device.subsystem(sysfs: sysfs) != subsystem { continue }
            if let vendor = deviceClass.vendorID, device.parentAttribute("idVendor", sysfs: sysfs)?.lowercased() != vendor.lowercased() { continue }
            if let product = deviceClass.productID, device.parentAttribute("idProduct", sysfs: sysfs)?.lowercased() != product.lowercased() { continue }
            nodes.append(device)
        }
        if deviceClass.grouped == true { return nodes.isEmpty ? [] : [Device(key: deviceClass.name, nodes: nodes)] }
        return nodes.map { Device(key: $0.path, nodes: [$0]) }
    }

    /// The numbers of the consoles the kernel writes to.
    static func consoleNumbers(sysfs: String) -> [String] {
        let active = HostDevice.readSmallFile(sysfs + "/class/tty/console/active") ?? ""
        return (["console"] + active.split(separator: " ").map(String.init)).compactMap { HostDevice.at("/dev/" + $0)?.number }
    }

    /// For a class found by udev properties alone: the device nodes in /dev and one level below
    /// (/dev/input/event0), links left out, and never the standard nodes every container has,
    /// memory devices, terminals or ptys.
    static func systemDeviceNodes() -> [String] {
        (glob("/dev/*") + glob("/dev/*/*")).filter { path in
            var status = stat()
            guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFCHR || status.st_mode & S_IFMT == S_IFBLK,
                  let device = HostDevice.at(path) else { return false }
            let excluded = device.type == "c" && (device.major == 1 || device.major == 5 || (device.major == 4 && device.minor < 64) || (136...143).contains(device.major))
            return !excluded
        }
    }

    static func glob(_ pattern: String) -> [String] {
        var result = glob_t()
        defer { globfree(&result) }
        guard Glibc.glob(pattern, 0, nil, &result) == 0 else { return [] }
        return (0..<Int(result.gl_pathc)).compactMap { index in result.gl_pathv[index].map { String(cString: $0) } }
    }
}
