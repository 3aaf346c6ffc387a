#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import KubeModel
import Logging
import ServiceLifecycle
import Synchronization
import SystemSupport

/// The kubelet's device plugin API (`deviceplugin/v1beta1`), so existing plugins work unchanged:
/// the agent serves `Registration/Register` on `kubelet.sock` in the plugin directory; for each
/// plugin that registers it calls `ListAndWatch` on the plugin's socket there and keeps its
/// devices (and their health) as the extended resource the plugin names. Admission calls
/// `GetPreferredAllocation` and `Allocate`, a container's start `PreStartContainer` (as the
/// plugin's options ask). A plugin whose watch ends keeps its devices in capacity, none
/// allocatable, until it registers again (plugins register again when `kubelet.sock` is made anew,
/// which the agent does at every start).
public struct DevicePluginService: Service {
    /// The kubelet's.
    public static let defaultDirectory = "/var/lib/kubelet/device-plugins"
    let directory: String
    let devices: DeviceManager
    let logger: Logger

    public init(directory: String, devices: DeviceManager, logger: Logger) {
        self.directory = directory
        self.devices = devices
        self.logger = logger
    }

    /// The watches running, by resource (a plugin that registers again replaces its watch).
    final class Watches: Sendable {
        let generations = Mutex<[String: Int]>([:])
        func next(_ resource: String) -> Int { generations.withLock { $0[resource, default: 0] += 1; return $0[resource]! } }
        func isCurrent(_ resource: String, _ generation: Int) -> Bool { generations.withLock { $0[resource] == generation } }
    }

    public func run() async throws {
        do {
            // Only root reaches the registration socket (a registered plugin is trusted with the
            // containers' devices and mounts).
            try FileTree.makeDirectories(directory, mode: 0o700)
            guard chmod(directory, 0o700) == 0 else { throw FileError(operation: "chmod", path: directory, code: errno) }
        } catch {
            logger.error("device plugins are off: \(error)")
            // Returning would end the agent's service group.
            try? await gracefulShutdown()
            return
        }
        let socket = directory + "/kubelet.sock"
        let (registrations, continuation) = AsyncStream.makeStream(of: DevicePluginMessages.RegisterRequest.self)
        let watches = Watches()
        let directory = self.directory
        try? await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { [logger] in
                    do {
                        try await GRPCUnixTransport.serve(path: socket) { bytes in
                            do {
                                let request = try DevicePluginMessages.RegisterRequest(decoding: bytes)
                                if let problem = Self.problem(request, directory: directory) {
                                    logger.warning("device plugin registration refused: \(problem)")
                                    return problem
                                }
                                continuation.yield(request)
                                return nil
                            } catch {
                                return "malformed RegisterRequest: \(error)"
                            }
                        }
                    } catch {
                        logger.error("device plugin registration socket \(socket): \(error)")
                    }
                }
                for await request in registrations {
                    // Recorded here, in order: the latest registration of a resource wins.
                    let generation = watches.next(request.resourceName)
                    devices.registerPlugin(resource: request.resourceName, socket: directory + "/" + request.endpoint, options: request.options)
                    group.addTask { await self.watch(request, generation: generation, watches: watches) }
                }
            }
        }
        unlink(socket)
    }

    /// Why the kubelet would refuse a registration; nil when it is accepted.
    static func problem(_ request: DevicePluginMessages.RegisterRequest, directory: String) -> String? {
        if request.version != DevicePluginMessages.version {
            return "Unsupported version: \(request.version) (the agent speaks \(DevicePluginMessages.version))"
        }
        let name = request.resourceName
        let parts = name.split(separator: "/", omittingEmptySubsequences: false)
        let qualified = parts.count == 2 && !parts[0].isEmpty && !parts[1].isEmpty && name.count <= 253
            && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-._/".contains($0)) }
        if !qualified || !Pod.isExtendedResource(name) {
            return "invalid resource name \"\(name)\": not an extended resource name (domain/name, outside kubernetes.io)"
        }
        if name.hasPrefix(DeviceClass.resourcePrefix) { return "\(name): devices.iotkube.io/ belongs to the agent's device classes" }
        let endpoint = request.endpoint
        if endpoint.isEmpty || endpoint.contains("/") || endpoint == "." || endpoint == ".." || endpoint == "kubelet.sock" || endpoint.utf8.count > 100 {
            return "invalid endpoint \"\(endpoint)\": a socket file name in \(directory)"
        }
        return nil
    }

    /// Follows one plugin's devices until its watch ends or a newer registration replaces it.
    func watch(_ request: DevicePluginMessages.RegisterRequest, generation: Int, watches: Watches) async {
        let resource = request.resourceName, socket = directory + "/" + request.endpoint
        logger.info("device plugin for \(resource) registered at \(socket)")
        let devices = self.devices, logger = self.logger
        do {
            // A plugin may register before its socket listens: dialled for up to 10 s, as the kubelet does.
            let deadline = ContinuousClock.now + .seconds(10)
            let listed = Mutex(false)
            while true {
                do {
                    try await GRPCUnixTransport.call(socket: socket, method: "/v1beta1.DevicePlugin/ListAndWatch", request: []) { bytes in
                        guard watches.isCurrent(resource, generation) else { throw CancellationError() }
                        listed.withLock { $0 = true }
                        let list = try DevicePluginMessages.devices(decoding: bytes)
                        guard list.count <= 10_000 else { throw GRPCUnixTransport.CallError(description: "a list of \(list.count) devices (at most 10000)") }
                        if devices.updatePlugin(resource: resource, socket: socket, devices: list) {
                            logger.notice("\(resource): \(list.filter(\.healthy).count) of \(list.count) devices healthy")
                        }
                    }
                    break
                } catch where !(error is CancellationError) && !listed.withLock({ $0 }) && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(500))
                }
            }
            logger.warning("device plugin for \(resource) ended its watch")
        } catch is CancellationError {
            return
        } catch {
            logger.warning("device plugin for \(resource) at \(socket): \(error)")
        }
        if watches.isCurrent(resource, generation) { devices.disconnectPlugin(resource: resource, socket: socket) }
    }
}
