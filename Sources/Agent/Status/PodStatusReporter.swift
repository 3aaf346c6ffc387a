import KubeClient
import KubeModel
import Logging
import ServiceLifecycle
import SystemSupport

/// The kubelet's status manager: keeps the newest status of every pod, writes it to the API
/// (`pods/status`, merge patch) only when it differs from what was last written, and holds it
/// while the API is unreachable, flushing once it is back. Finished pods that the API asked to
/// delete are deleted (grace period 0) after their final status. Nothing is written locally.
public actor PodStatusReporter {
    struct Entry {
        var namespace: String
        var name: String
        var uid: String
        var status: PodStatus
        /// A static pod: its status goes to its mirror pod, whose UID is the API's.
        var isStatic = false
        var written: PodStatus?
        var deleteWhenWritten = false
        var deleted = false
        /// Not tried again before this (a static pod whose mirror is not there yet, a write the
        /// API refused).
        var retryAfter: ContinuousClock.Instant?
        /// Refusals in a row, for this pod's own back-off (10 s doubling to 5 minutes).
        var refusals = 0
        var due: Bool { (written != status || deleteWhenWritten) && (retryAfter.map { $0 <= .now } ?? true) }
    }

    let client: @Sendable () -> KubeAPIClient?
    /// Signalled on every report, so the status service writes at once instead of polling.
    let wake = WakeSignal()
    let logger: Logger
    var entries: [String: Entry] = [:]
    public private(set) var failures = 0

    public init(client: @escaping @Sendable () -> KubeAPIClient?, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Records the status of `pod` (from its worker); written soon when it changed.
    public func report(_ pod: Pod, status: PodStatus) {
        guard let uid = pod.metadata.uid else { return }
        var entry = entries[uid] ?? Entry(namespace: pod.metadata.namespace ?? "default", name: pod.metadata.name ?? "", uid: uid, status: status)
        // A newer status is tried at once, even while an older one waits out a refusal.
        if entry.status != status { entry.retryAfter = nil }
        entry.status = status
        entry.isStatic = pod.metadata.annotations?[StaticPodSource.sourceAnnotation] == "file"
        entries[uid] = entry
        wake.signal()
    }

    /// The pod's containers are gone and the API asked for its deletion: delete the object once
    /// its final status is written.
    public func finish(uid: String, deleteFromAPI: Bool) {
        guard deleteFromAPI else {
            entries[uid] = nil
            return
        }
        entries[uid]?.deleteWhenWritten = true
        entries[uid]?.retryAfter = nil
        wake.signal()
    }

    /// Writes the status of `uid` again (its API object was recreated, as a mirror pod is).
    public func rewrite(uid: String) {
        entries[uid]?.written = nil
    }

    /// The status last recorded for `uid` (what the agent endpoint reports).
    public func status(uid: String) -> PodStatus? { entries[uid]?.status }

    /// The status of `uid` the API has, when it is the newest one recorded.
    public func writtenStatus(uid: String) -> PodStatus? {
        guard let entry = entries[uid], entry.written == entry.status else { return nil }
        return entry.written
    }

    /// Pods whose status is not written yet.
    public var pending: Int { entries.values.filter(\.due).count }

    /// Writes what changed; false when the API could not be reached (try again later). Up to
    /// eight pods are written at once (pods that start together are reported together).
    public func flush() async -> Bool {
        guard let client = client() else { return true }
        let due = entries.keys.sorted().filter { entries[$0]?.due == true }
        var reachable = true
        var next = 0
        while reachable && next < due.count {
            let batch = due[next..<min(due.count, next + 8)]
            next += batch.count
            reachable = await withTaskGroup(of: Bool.self) { group in
                for uid in batch { group.addTask { await self.write(uid, client: client) } }
                var all = true
                for await written in group where !written { all = false }
                return all
            }
        }
        if reachable { failures = 0 }
        return reachable
    }

    /// The pod of the entry's name as the API has it; nil when it is gone or not this board's
    /// to read any more (a node may not read other nodes' pods, and iotkube-server refuses a
    /// node's read of a missing one): then there is nothing to delete.
    private func currentPod(_ entry: Entry, client: KubeAPIClient) async throws -> Pod? {
        do { return try await client.get(Pod.self, namespace: entry.namespace, name: entry.name) } catch {
            if error.statusCode == 403 || error.statusCode == 404 { return nil }
            throw error
        }
    }

    /// Whether an answer with `code` is about one pod's write rather than about the API or this
    /// board's credentials: 4xx, but not 401 (the credentials), 408 (a timeout) or 429 (load),
    /// which the writer backs off from with every pod kept.
    static func refusesThisPodAlone(_ code: Int) -> Bool {
        (400..<500).contains(code) && ![401, 408, 429].contains(code)
    }

    /// Writes one pod's status (and deletes it when asked); false when the API was unreachable
    /// or refused this board (no answer, 401, 408, 429, 5xx), which makes the writer back off.
    private func write(_ uid: String, client: KubeAPIClient) async -> Bool {
        var reachable = true
        // A copy: workers report newer statuses (and finish pods) while a write is under way,
        // so only what was sent is recorded afterwards, never the copy as a whole.
        guard let entry = entries[uid], entry.due else { return true }
        let status = entry.status
        var written: PodStatus?, deleted = false, retryAfter: ContinuousClock.Instant?, refused = false
        do {
            if entry.written != status {
                var patch: JSONValue = ["status": try KubeJSON.tree(status)]
                if !entry.isStatic { patch.set(["metadata"], ["uid": .string(entry.uid)]) }
                _ = try await client.mergePatch(Pod.self, namespace: entry.namespace, name: entry.name, patch: patch, subresource: "status")
                written = status
            }
            // Deleted only once the status the worker ended with is written.
            if entry.deleteWhenWritten && !entry.deleted && entries[uid]?.status == status {
                if let current = try await currentPod(entry, client: client), current.metadata.uid == entry.uid {
                    try await client.delete(Pod.self, namespace: entry.namespace, name: entry.name, gracePeriodSeconds: 0)
                    logger.info("pod \(entry.namespace)/\(entry.name) deleted from the API after its containers stopped")
                }
                deleted = true
            }
        } catch {
            let code = (error as? KubeClientError)?.statusCode
            logger.debug("pod \(entry.namespace)/\(entry.name): status write answered \(code.map(String.init) ?? "no response"): \(error)")
            if code == 404, entry.isStatic {
                // The mirror pod is not there yet: written once it is.
                retryAfter = .now + .seconds(5)
            } else if code == 404 || code == 409 {
                // The object is gone or is another pod of the same name now: nothing to write.
                written = status
                deleted = entry.deleteWhenWritten
            } else if let code, Self.refusesThisPodAlone(code) {
                // The API answered and refused this pod's write (authorization, admission,
                // validation): a verdict on this pod alone. The others are written now; this
                // one is kept and tried again after its own back-off.
                let message: Logger.Message = "pod status for \(entry.namespace)/\(entry.name) refused (\(code)): \(error)"
                if entry.refusals == 0 { logger.warning(message) } else { logger.debug(message) }
                refused = true
                retryAfter = .now + .seconds(min(10 << min(entry.refusals, 5), 300))
            } else {
                reachable = false
                failures += 1
                if failures == 1 || failures % 20 == 0 {
                    logger.warning("pod status for \(entry.namespace)/\(entry.name) not written (kept until the API is back): \(error)")
                }
            }
        }
        if deleted {
            entries[uid] = nil
        } else if var current = entries[uid] {
            if let written { current.written = written }
            current.retryAfter = retryAfter
            current.refusals = refused ? min(current.refusals + 1, 16) : 0
            entries[uid] = current
        }
        return reachable
    }


}

/// Runs the reporter's writes: soon after a change, retried with back-off while the API is away.
public struct PodStatusService: Service {
    let reporter: PodStatusReporter

    public init(reporter: PodStatusReporter) { self.reporter = reporter }

    public func run() async throws {
        var backoff = Backoff()
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let reachable = await reporter.flush()
            if reachable {
                backoff.reset()
                // Until a worker reports a change (at the latest in 10 s); then a moment for the
                // rest of the burst (a pod's containers start together) before writing.
                let waitFor: Duration = await reporter.pending > 0 ? .milliseconds(200) : .seconds(10)
                await cancelWhenGracefulShutdown { await reporter.wake.wait(upTo: waitFor) }
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(5)) }
            } else {
                let delay = backoff.next()
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: delay) }
            }
        }
        _ = await reporter.flush()
    }
}
