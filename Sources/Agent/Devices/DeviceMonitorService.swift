import KubeModel
import Logging
import ServiceLifecycle

/// Follows devices coming and going (hotplug): looks for every class's nodes again every few
/// seconds (a directory listing, no writes), so the Node's capacity and allocatable follow at
/// the next heartbeat, and a container whose device was unplugged gets a warning event (its
/// status shows the device Unhealthy until the device returns or the pod ends).
public struct DeviceMonitorService: Service {
    let devices: DeviceManager
    let pods: PodWorkers
    let events: PodEventRecorder?
    let interval: Duration
    let logger: Logger

    public init(devices: DeviceManager, pods: PodWorkers, events: PodEventRecorder?, interval: Duration = .seconds(5), logger: Logger) {
        self.devices = devices
        self.pods = pods
        self.events = events
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        if let problem = devices.loadError { logger.error("\(problem)") }
        for (resource, amounts) in devices.resources().sorted(by: { $0.key < $1.key }) where amounts.capacity > 0 {
            logger.info("\(resource): \(amounts.allocatable) available")
        }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(for: interval)
            await check()
        }
    }

    /// One look: logs and reports what changed.
    func check() async {
        let change = devices.rescan()
        if let problem = devices.takeSaveError() { logger.warning("\(problem)") }
        if change.resourcesChanged {
            let summary = devices.resources().sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.allocatable)" }.joined(separator: ", ")
            logger.notice("devices changed: \(summary)")
        }
        let admitted = pods.admittedPods()
        for (held, unplugged) in change.unplugged.map({ ($0, true) }) + change.replugged.map({ ($0, false) }) {
            let what = "device \(held.device) (\(held.resource)) of container \(held.container)"
            logger.warning("\(what) in pod \(held.pod) \(unplugged ? "was unplugged" : "is back")")
            guard let pod = admitted.first(where: { $0.pod.metadata.uid == held.pod })?.pod else { continue }
            await events?.record(pod, type: unplugged ? "Warning" : "Normal", reason: unplugged ? "DeviceUnhealthy" : "DeviceHealthy",
                                 message: unplugged ? "\(what) was unplugged" : "\(what) is back",
                                 fieldPath: "spec.containers{\(held.container)}")
        }
    }
}
