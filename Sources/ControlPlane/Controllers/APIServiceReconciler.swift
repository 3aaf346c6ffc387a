import Logging
import ServiceLifecycle

/// Keeps the `kubernetes` service and its endpoint slice pointing at this server, as
/// kube-apiserver's endpoint reconciler does: at start and every `interval` (a deleted or
/// edited one comes back).
public struct APIServiceReconciler: Service {
    let api: APIServer
    let address: String
    let port: Int
    let logger: Logger
    let interval: Duration

    public init(api: APIServer, address: String, port: Int, logger: Logger, interval: Duration = .seconds(10)) {
        self.api = api
        self.address = address
        self.port = port
        self.logger = logger
        self.interval = interval
    }

    public func run() async throws {
        guard port > 0 else { return logger.warning("the kubernetes service is not kept: the API's port is not known before it is bound") }
        var failing = false
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try api.reconcileAPIService(address: address, port: port)
                failing = false
            } catch {
                // Said once per episode, not every interval.
                if !failing { logger.warning("keeping the kubernetes service failed: \(error)") }
                failing = true
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
