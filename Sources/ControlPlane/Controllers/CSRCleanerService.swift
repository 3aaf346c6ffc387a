import FoundationEssentials
import KubeModel
import Logging
import ServiceLifecycle
import X509

/// Deletes finished and abandoned CertificateSigningRequests, as kube-controller-manager's
/// csrcleaner does: approved-and-issued, denied and failed ones an hour after their condition
/// was last updated, pending ones a day after creation, issued ones as soon as the certificate
/// has expired. Without it every join and renewal would stay in the store for ever.
public struct CSRCleanerService: Service {
    static let finishedExpiration: Int64 = 3600
    static let pendingExpiration: Int64 = 24 * 3600

    let store: ObjectStore
    let logger: Logger
    let interval: Duration

    public init(store: ObjectStore, logger: Logger, interval: Duration = .seconds(3600)) {
        self.store = store
        self.logger = logger
        self.interval = interval
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try clean(now: .now())
            } catch {
                logger.warning("certificate signing request cleanup failed: \(error)")
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    /// One pass at time `now`; returns the names deleted.
    @discardableResult
    func clean(now: Timestamp) throws -> [String] {
        var deleted: [String] = []
        for tree in try store.list(.certificateSigningRequests, namespace: nil).items {
            guard let name = tree.string(at: ["metadata", "name"]) else { continue }
            // An object this server cannot decode is left for an administrator, not deleted.
            guard let request = try? KubeJSON.decode(KubeModel.CertificateSigningRequest.self, from: tree), Self.isDue(request, now: now) else { continue }
            guard (try? store.delete(.certificateSigningRequests, namespace: "", name: name, expectedUID: request.metadata.uid)) != nil else { continue }
            logger.info("deleted certificate signing request \(name)")
            deleted.append(name)
        }
        return deleted
    }

    /// Whether a request is past its time.
    static func isDue(_ request: KubeModel.CertificateSigningRequest, now: Timestamp) -> Bool {
        let conditions = request.status?.conditions ?? []
        func olderThan(_ time: Timestamp?, _ seconds: Int64) -> Bool {
            guard let time else { return false }
            return time.adding(seconds: seconds) < now
        }
        if conditions.isEmpty { return olderThan(request.metadata.creationTimestamp, pendingExpiration) }
        let issued = !(request.status?.certificate?.bytes.isEmpty ?? true)
        for condition in conditions {
            switch condition.type {
            case "Denied", "Failed":
                if olderThan(condition.lastUpdateTime, finishedExpiration) { return true }
            case "Approved" where issued:
                if olderThan(condition.lastUpdateTime, finishedExpiration) || certificateExpired(request, now: now) { return true }
            default: break
            }
        }
        return false
    }

    private static func certificateExpired(_ request: KubeModel.CertificateSigningRequest, now: Timestamp) -> Bool {
        guard let bytes = request.status?.certificate?.bytes,
              let certificate = try? Certificate(pemEncoded: String(decoding: bytes, as: UTF8.self)) else { return false }
        return Timestamp(certificate.notValidAfter) < now
    }
}
