import Foundation

/// A qemu VM built by `packaging/vm/make-image.sh` (Debian bookworm, systemd as PID 1, pure
/// cgroup v2), for behaviour this host cannot show. Booted by `init`, driven by `run`, stopped
/// by `stop`; files go to the guest through `share` (the guest's /mnt/share, its working folder).
public final class VirtualMachine: @unchecked Sendable {
    public static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let script = packageRoot + "/packaging/vm/vm.sh"
    /// The image is built once per checkout and reused while make-image.sh is unchanged.
    public static let imageDirectory = ProcessInfo.processInfo.environment["IOTKUBE_VM_IMAGE"] ?? packageRoot + "/.build/vm"

    public static var ready: Bool {
        getuid() == 0 && toolAvailable("qemu-system-x86_64") && toolAvailable("debootstrap") && toolAvailable("busybox")
    }
    public static let reason = "needs root, qemu-system-x86_64, debootstrap and busybox (packaging/install-deps.sh --test)"

    public let control: String
    public let share: String
    /// Extra kernel command line for the next boot.
    public var kernelArguments: String

    /// Builds the image when needed and boots the VM. `kernelArguments` go on the kernel command line.
    public init(kernelArguments: String = "") throws {
        let built = try ServerProcess.run(Self.packageRoot + "/packaging/vm/make-image.sh", [Self.imageDirectory], timeout: 1800)
        guard built.status == 0 else { throw TestFailure("make-image.sh: \(built.output)") }
        let base = NSTemporaryDirectory() + "iotkube-vm-\(UUID().uuidString)"
        control = base + "/control"
        share = base + "/share"
        self.kernelArguments = kernelArguments
        try FileManager.default.createDirectory(atPath: control, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: share, withIntermediateDirectories: true)
        try boot()
    }

    func boot() throws {
        var started = try ServerProcess.run("/usr/bin/env", ["VM_KERNEL_ARGS=\(kernelArguments)", Self.script, "start", Self.imageDirectory, control, share], timeout: 900)
        if started.status != 0, started.output.contains("qemu exited during boot") {
            // Software emulation on a loaded two-core host has (rarely) lost a guest during boot;
            // one more boot of the same disk tells that apart from a guest that cannot boot.
            print("[vm] first boot failed, booting once more: \(started.output)")
            started = try ServerProcess.run("/usr/bin/env", ["VM_KERNEL_ARGS=\(kernelArguments)", Self.script, "start", Self.imageDirectory, control, share], timeout: 900)
        }
        guard started.status == 0 else { throw TestFailure("vm.sh start: \(started.output)") }
        print("[vm] \(started.output.trimmingCharacters(in: .whitespacesAndNewlines))")
    }

    /// Runs a bash script in the guest (as root, in /mnt/share); stdout and stderr together.
    @discardableResult
    public func run(_ script: String, timeout: TimeInterval = 600) throws -> (status: Int32, output: String) {
        try ServerProcess.run(Self.script, ["exec", control, script], timeout: timeout)
    }

    /// Like `run`, but a non-zero exit is a failure naming the script and its output.
    @discardableResult
    public func check(_ script: String, timeout: TimeInterval = 600) throws -> String {
        let result = try run(script, timeout: timeout)
        guard result.status == 0 else { throw TestFailure("in the VM, `\(script)` exited \(result.status): \(result.output)") }
        return result.output
    }

    /// Copies an agent binary into the guest's /usr/local/bin, with the Swift runtime libraries a
    /// debug (dynamically linked) build needs in /usr/local/lib; a static build needs none.
    public func installAgent(_ binary: String) throws {
        let libraries = share + "/.agent-libraries"
        try FileManager.default.createDirectory(atPath: libraries, withIntermediateDirectories: true)
        let linked = try ServerProcess.run("/usr/bin/ldd", [binary])
        for line in linked.output.split(separator: "\n") {
            // "libswiftCore.so => /toolchain/usr/lib/swift/linux/libswiftCore.so (0x…)"
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 3, fields[1] == "=>", fields[2].contains("/swift/") else { continue }
            try FileManager.default.copyItem(atPath: String(fields[2]), toPath: libraries + "/" + String(fields[0]))
        }
        try FileManager.default.copyItem(atPath: binary, toPath: share + "/.agent-binary")
        try check("""
            set -e
            cp .agent-libraries/* /usr/local/lib/ 2>/dev/null || true
            ldconfig
            install -m 0755 .agent-binary /usr/local/bin/iotkube-agent
            rm -rf .agent-libraries .agent-binary
            iotkube-agent --version
            """)
    }

    /// A clean poweroff, then a boot of the same disk (the guest keeps its files).
    public func reboot() throws {
        stop()
        stopped.reset()
        try boot()
    }

    /// Waits for the guest to reboot itself (qemu runs with -no-reboot: a reboot ends it), then
    /// boots the same disk again.
    public func bootAfterGuestReboot(timeout: TimeInterval) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while qemuRunning {
            guard Date() < deadline else { throw TestFailure("the guest did not reboot within \(Int(timeout)) s") }
            usleep(200_000)
        }
        try boot()
    }

    /// Whether qemu still runs.
    public var qemuRunning: Bool {
        guard let text = try? String(contentsOfFile: control + "/qemu.pid", encoding: .utf8), let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return false }
        return kill(pid, 0) == 0
    }

    private let stopped = StopFlag()

    public func stop() {
        guard stopped.set() else { return }
        _ = try? ServerProcess.run(Self.script, ["stop", control], timeout: 120)
    }

    // Async forms for async tests: the VM's long waits run on threads of their own, so they do
    // not hold the few Swift concurrency threads other suites' async code needs.

    /// Builds the image when needed and boots the VM.
    public static func make(kernelArguments: String = "") async throws -> VirtualMachine {
        try await onOwnThread { try VirtualMachine(kernelArguments: kernelArguments) }
    }

    public func runAsync(_ script: String, timeout: TimeInterval = 600) async throws -> (status: Int32, output: String) {
        try await onOwnThread { [self] in try self.run(script, timeout: timeout) }
    }

    @discardableResult
    public func checkAsync(_ script: String, timeout: TimeInterval = 600) async throws -> String {
        try await onOwnThread { [self] in try self.check(script, timeout: timeout) }
    }

    public func rebootAsync() async throws {
        try await onOwnThread { [self] in try self.reboot() }
    }

    public func bootAfterGuestRebootAsync(timeout: TimeInterval) async throws {
        try await onOwnThread { [self] in try self.bootAfterGuestReboot(timeout: timeout) }
    }

    public func stopAsync() async {
        _ = try? await onOwnThread { [self] in self.stop() }
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: URL(fileURLWithPath: control).deletingLastPathComponent().path)
    }
}

/// Whether a VM was stopped (so `stop` and `deinit` power it off once).
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false

    /// Sets the flag; false when it was already set.
    func set() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if value { return false }
        value = true
        return true
    }

    func reset() {
        lock.lock()
        value = false
        lock.unlock()
    }
}
