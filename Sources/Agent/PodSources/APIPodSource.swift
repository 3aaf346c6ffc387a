import KubeClient
import KubeModel
import Logging
import ServiceLifecycle
import Synchronization

/// The pods the API binds to this node: a list, then a watch resumed from the last
/// resourceVersion (relisting on 410 Gone), each change handed to the pod workers as the
/// complete set. While the API cannot be reached the workers keep the last set (and the
/// checkpoint keeps it across reboots); reconnecting retries with capped, jittered back-off.
public struct APIPodSource: Service {
    let nodeName: String
    let client: @Sendable () -> KubeAPIClient?
    let workers: PodWorkers
    let logger: Logger

    public init(nodeName: String, client: @escaping @Sendable () -> KubeAPIClient?, workers: PodWorkers, logger: Logger) {
        self.nodeName = nodeName
        self.client = client
        self.workers = workers
        self.logger = logger
    }

    final class Known: Sendable {
        let state = Mutex<(pods: [String: Pod], version: String)>(([:], ""))
    }

    public func run() async throws {
        var backoff = Backoff()
        var failures = 0
        let selector = "spec.nodeName=\(nodeName)"
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            guard let client = client() else { return }
            let known = Known()
            do {
                let list = try await client.list(Pod.self, fieldSelector: selector)
                // Mirror pods stand for static pods, which run from their manifests.
                let pods = Dictionary(list.items.filter { !StaticPodSource.isMirror($0) }.compactMap { pod in pod.metadata.uid.map { ($0, pod) } },
                                      uniquingKeysWith: { $1 })
                known.state.withLock { $0 = (pods, list.metadata.resourceVersion ?? "0") }
                workers.apply(source: "api", pods: Array(pods.values))
                if failures > 0 { logger.notice("pod source reconnected after \(failures) failures: \(pods.count) pods") }
                failures = 0
                backoff.reset()
                // Watch until the server ends the stream; then resume from the last version seen.
                while !Task.isShuttingDownGracefully && !Task.isCancelled {
                    let version = known.state.withLock { $0.version }
                    let workers = self.workers
                    try await cancelWhenGracefulShutdown {
                        try await client.watch(Pod.self, resourceVersion: version, fieldSelector: selector, timeoutSeconds: 300) { event in
                            guard let pod = event.object else { return }
                            let pods = known.state.withLock { state -> [Pod]? in
                                if let version = pod.metadata.resourceVersion { state.version = version }
                                guard let uid = pod.metadata.uid, !StaticPodSource.isMirror(pod) else { return nil }
                                switch event.type {
                                case .added, .modified: state.pods[uid] = pod
                                case .deleted: state.pods[uid] = nil
                                case .bookmark, .error: return nil
                                }
                                return Array(state.pods.values)
                            }
                            if let pods { workers.apply(source: "api", pods: pods) }
                        }
                    }
                }
            } catch {
                if Task.isShuttingDownGracefully || Task.isCancelled { return }
                if (error as? KubeClientError)?.statusCode == 410 {
                    logger.info("pod watch expired (410): listing again")
                    continue
                }
                failures += 1
                if failures == 1 || failures % 10 == 0 { logger.warning("pod source: \(error) (keeping the last known pods; retrying)") }
                let delay = backoff.next()
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
            }
        }
    }
}
