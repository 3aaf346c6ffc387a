import KubeClient
import KubeModel
import Logging
import NodeCrypto
import ServiceLifecycle
import SystemSupport

/// Static pods: manifests in a directory on the board (default `/etc/iotkube/manifests`),
/// re-read every 20 s, run whether or not a server is there. Each gets the kubelet's identity:
/// name `<name>-<node>`, a UID hashed from the manifest and the node, and the
/// `kubernetes.io/config.*` annotations. When the API is reachable each is mirrored there (a
/// mirror pod, owned by the Node) so `kubectl` shows it and its status; a mirror deleted or
/// out of date is replaced, one without a manifest is removed.
public struct StaticPodSource: Service {
    public static let sourceAnnotation = "kubernetes.io/config.source"
    public static let hashAnnotation = "kubernetes.io/config.hash"
    public static let mirrorAnnotation = "kubernetes.io/config.mirror"
    public static let seenAnnotation = "kubernetes.io/config.seen"

    let directory: String
    let nodeName: String
    let client: @Sendable () -> KubeAPIClient?
    let workers: PodWorkers
    let status: PodStatusReporter
    let logger: Logger
    let interval: Duration

    public init(directory: String, nodeName: String, client: @escaping @Sendable () -> KubeAPIClient?, workers: PodWorkers,
                status: PodStatusReporter, logger: Logger, interval: Duration = .seconds(20)) {
        self.directory = directory
        self.status = status
        self.nodeName = nodeName
        self.client = client
        self.workers = workers
        self.logger = logger
        self.interval = interval
    }

    /// Whether a pod from the API is the mirror of a static pod (its worker is the file's).
    public static func isMirror(_ pod: Pod) -> Bool { pod.metadata.annotations?[mirrorAnnotation] != nil }

    public func run() async throws {
        var reported: [String: String] = [:]   // file → last problem logged
        var first = true
        var seen: [String: Timestamp] = [:]
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let (pods, problems) = read(seen: &seen)
            for (file, problem) in problems where reported[file] != problem { logger.error("static pod manifest \(file): \(problem)") }
            reported = problems
            workers.apply(source: "file", pods: pods)
            if first, !pods.isEmpty { logger.info("\(pods.count) static pods from \(directory)") }
            first = false
            await mirror(pods)
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    /// The static pods of the directory, and the problem of each file that is not one.
    func read(seen: inout [String: Timestamp]) -> (pods: [Pod], problems: [String: String]) {
        var pods: [Pod] = [], problems: [String: String] = [:]
        var names: Set<String> = []
        for name in FileTree.list(directory).sorted() where !name.hasPrefix(".") {
            guard name.hasSuffix(".yaml") || name.hasSuffix(".yml") || name.hasSuffix(".json") else { continue }
            let path = directory + "/" + name
            do {
                guard let bytes = try AtomicFile.read(path) else { continue }
                var pod = try KubeYAML.decode(Pod.self, from: bytes, validation: .strict)
                guard pod.kind == Pod.kind else { throw ProvisioningError("kind is \(pod.kind ?? "missing"), expected Pod") }
                guard let base = pod.metadata.name, !base.isEmpty else { throw ProvisioningError("metadata.name is missing") }
                guard pod.spec != nil, !(pod.spec?.containers.isEmpty ?? true) else { throw ProvisioningError("spec.containers is empty") }
                // The API server's rules, as the kubelet applies them to static pods.
                let problems = PodValidation.problems(pod)
                if !problems.isEmpty {
                    throw ProvisioningError("invalid pod: " + problems.map { "\($0.field ?? ""): \($0.message ?? "")" }.joined(separator: "; "))
                }
                let hash = Self.hash(bytes, node: nodeName)
                pod.metadata.name = base + "-" + nodeName
                pod.metadata.namespace = pod.metadata.namespace ?? "default"
                guard names.insert("\(pod.metadata.namespace!)/\(pod.metadata.name!)").inserted else {
                    throw ProvisioningError("another manifest already defines pod \(pod.metadata.namespace!)/\(pod.metadata.name!)")
                }
                pod.metadata.uid = hash
                var annotations = pod.metadata.annotations ?? [:]
                annotations[Self.sourceAnnotation] = "file"
                annotations[Self.hashAnnotation] = hash
                let firstSeen = seen[hash] ?? .now()
                seen[hash] = firstSeen
                annotations[Self.seenAnnotation] = firstSeen.description
                pod.metadata.annotations = annotations
                pod.metadata.creationTimestamp = firstSeen
                pod.spec?.nodeName = nodeName
                pod.status = nil
                pods.append(pod)
            } catch {
                problems[path] = "\(error)"
            }
        }
        seen = seen.filter { entry in pods.contains { $0.metadata.uid == entry.key } }
        return (pods, problems)
    }

    /// The kubelet hashes the manifest; the node name keeps UIDs apart across boards.
    static func hash(_ bytes: [UInt8], node: String) -> String {
        StreamingDigest.hex(StreamingDigest.hash(.sha256, bytes + Array(node.utf8)).prefix(16))
    }

    /// Creates, replaces or removes mirror pods so the API shows exactly the static pods.
    func mirror(_ pods: [Pod]) async {
        guard let client = client() else { return }
        do {
            let existing = try await client.list(Pod.self, fieldSelector: "spec.nodeName=\(nodeName)").items.filter(Self.isMirror)
            for pod in pods {
                let namespace = pod.metadata.namespace ?? "default", name = pod.metadata.name ?? ""
                let current = existing.first { $0.metadata.namespace == namespace && $0.metadata.name == name }
                if let current, current.metadata.annotations?[Self.mirrorAnnotation] == pod.metadata.uid, current.metadata.deletionTimestamp == nil { continue }
                if current != nil { try? await client.delete(Pod.self, namespace: namespace, name: name, gracePeriodSeconds: 0) }
                var mirror = Pod(metadata: ObjectMeta(name: name, namespace: namespace, labels: pod.metadata.labels, annotations: pod.metadata.annotations), spec: pod.spec)
                mirror.metadata.annotations?[Self.mirrorAnnotation] = pod.metadata.uid
                // Owned by the Node (as the kubelet's mirrors are): made once the Node is registered.
                guard let node = try? await client.get(Node.self, name: nodeName), let nodeUID = node.metadata.uid else { return }
                mirror.metadata.ownerReferences = [OwnerReference(apiVersion: "v1", kind: "Node", name: nodeName, uid: nodeUID, controller: true)]
                do {
                    _ = try await client.create(mirror)
                    if let uid = pod.metadata.uid { await status.rewrite(uid: uid) }
                    logger.info("mirror pod \(namespace)/\(name) created for a static pod")
                } catch {
                    logger.warning("mirror pod \(namespace)/\(name): \(error)")
                }
            }
            for stale in existing where !pods.contains(where: { $0.metadata.namespace == stale.metadata.namespace && $0.metadata.name == stale.metadata.name }) {
                try? await client.delete(Pod.self, namespace: stale.metadata.namespace, name: stale.metadata.name ?? "", gracePeriodSeconds: 0)
                logger.info("mirror pod \(stale.metadata.namespace ?? "")/\(stale.metadata.name ?? "") removed: its manifest is gone")
            }
        } catch {
            // The API is away: static pods run regardless; mirrors are made once it is back.
        }
    }
}
