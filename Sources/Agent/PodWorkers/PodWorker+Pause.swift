import SystemSupport

extension PodWorker {
    /// How long to wait for something to wake the worker. A pod whose containers all run, each
    /// watched for its exit, has only periodic work left (log sizes, volume contents): it
    /// waits ``PodHost/steadySyncInterval``. Anything else (starting, restarting, back-off, an
    /// active deadline, a runtime without exit watches) is looked at every ``PodHost/syncInterval``.
    func pauseBetweenSyncs() -> Duration {
        let running = Set(runs.values.filter(\.isRunning).compactMap(\.id))
        for (id, watched) in watchedExits where !running.contains(id) {
            host.exitWatch?.unwatch(watched)
            watchedExits[id] = nil
        }
        // Every app container and every sidecar (an init container restarted always) runs:
        // a sidecar waiting for its restart is looked at every second.
        let mustRun = (pod.spec?.containers ?? []) + (pod.spec?.initContainers ?? []).filter { $0.restartPolicy == .always }
        guard let watch = host.exitWatch, state == .syncing, pod.spec?.activeDeadlineSeconds == nil, !(pod.spec?.containers ?? []).isEmpty,
              mustRun.allSatisfy({ runs[$0.name]?.isRunning == true && runs[$0.name]?.id != nil }) else { return host.syncInterval }
        var added = false
        for id in running where watchedExits[id] == nil {
            guard let directory = host.runtime.exitRecordDirectory(id: id), let watched = watch.watch(directory, wake: wake) else { return host.syncInterval }
            watchedExits[id] = watched
            added = true
        }
        // An exit recorded before its watch was added sent no event: the next sync (soon)
        // sees it.
        return added ? host.syncInterval : max(host.syncInterval, host.steadySyncInterval)
    }
}
