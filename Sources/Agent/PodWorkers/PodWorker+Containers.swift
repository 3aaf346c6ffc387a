#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import ImageStore
import KubeClient
import KubeModel
import Logging
import NIOPosix
import OCI
import PodNetwork
import Runtime
import SystemSupport

// Exits, starts and image pulls of a pod's containers.
extension PodWorker {
    // MARK: exits

    /// Turns runs that ended into terminated states (exit code, signal, OOM kill, message).
    func observeExits(now: Int64) {
        for container in allContainers {
            guard var run = runs[container.name], run.isRunning, let id = run.id else { continue }
            let status: Runtime.ContainerStatus
            do { status = try host.runtime.state(id: id).status } catch {
                status = .stopped
            }
            guard status == .stopped else { continue }
            probes.stop(containerID: id)
            run.state = finished(run, container: container, id: id)
            // The back-off counts from when the exit was seen, on the boot clock (the exit
            // record's time is the wall clock's, for the status only).
            if case .terminated = run.state { run.backoff.recordExit(started: run.startedAt, exited: now) }
            if let exitCode = run.exitCode {
                logger.info("container \(container.name) exited with \(exitCode)")
            }
            runs[container.name] = run
        }
    }

    func finished(_ run: ContainerRun, container: Container, id: String) -> ContainerRun.State {
        let exit = host.runtime.exitRecord(id: id)
        let finishedAt = exit.map { Self.timestamp(nanoseconds: $0.finishedAt) } ?? .now()
        var startedAt: Timestamp?
        if case .running(let at) = run.state { startedAt = at }
        guard let exit else {
            return .terminated(exitCode: 137, signal: 0, oomKilled: false, execError: nil, startedAt: startedAt, finishedAt: finishedAt,
                               message: "the container's process ended without an exit record (the runtime state was lost)")
        }
        let execError = exit.error.isEmpty ? nil : exit.error
        return .terminated(exitCode: exit.exitCode, signal: exit.signal, oomKilled: exit.oomKilled == true, execError: execError,
                           startedAt: startedAt, finishedAt: finishedAt, message: terminationMessage(container, exitCode: exit.exitCode, restartCount: run.restartCount))
    }

    /// The container's termination message file, else (FallbackToLogsOnError, failed) its last log lines.
    func terminationMessage(_ container: Container, exitCode: Int32, restartCount: Int32) -> String? {
        if let text = FileTree.readText(files.terminationMessagePath(container: container.name), limit: 4096), !text.isEmpty { return text }
        guard container.terminationMessagePolicy == .fallbackToLogsOnError, exitCode != 0,
              let log = FileTree.readText(host.logPath(pod, container: container.name, restartCount: restartCount), limit: 1 << 20) else { return nil }
        let lines = log.split(separator: "\n").suffix(80).map { line -> Substring in
            // CRI format: time stream tag message.
            let fields = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
            return fields.count == 4 ? fields[3] : line
        }
        let text = lines.joined(separator: "\n")
        return text.isEmpty ? nil : String(text.suffix(2048))
    }

    // MARK: starting a container

    func start(_ container: Container, _ run: inout ContainerRun) async {
        let now = self.now()
        let label = "container \(container.name)"
        // 1. The image, per the pull policy.
        let image: ImageRecord
        do { image = try await pullImage(container) } catch is CancellationError {
            // The pod is going (deleted, evicted): no failure to record. What was downloaded
            // stays in the store, and a later pull of the image continues from there.
            logger.info("\(label): image pull stopped, the pod is going")
            return
        } catch let problem as PodSetupProblem {
            run.pullFailures += 1
            run.pullBackoff.recordExit(started: now, exited: now)
            let reason = problem.reason == "ErrImagePull" && run.pullFailures > 1 ? "ImagePullBackOff" : problem.reason
            if run.pullFailures == 1 || run.pullFailures % 10 == 0 { logger.warning("\(label): \(problem.message)") }
            if reason == "ImagePullBackOff" { await event("BackOff", "Back-off pulling image \"\(container.image ?? "")\"", warning: true, container: container) }
            if problem.reason == "ErrImageNeverPull" || problem.reason == "InvalidImageName" { await event("Failed", problem.message, warning: true, container: container) }
            run.state = .waiting(reason: reason, message: problem.message)
            return
        } catch {
            run.state = .waiting(reason: "ErrImagePull", message: "\(error)")
            run.pullBackoff.recordExit(started: now, exited: now)
            return
        }
        run.pullFailures = 0
        run.pullBackoff = RestartBackoff()
        // 2. The process against the image's configuration, with current ConfigMaps and Secrets.
        if case .waiting(let reason, _) = run.state, reason == "CreateContainerConfigError" { await fetchReferences() }
        let configuration: ImageConfiguration
        let process: ContainerProcess
        do {
            configuration = try host.images.configuration(of: image)
            let configMaps = self.configMaps, secrets = self.secrets
            let context = ContainerProcess.Context(
                configMap: { configMaps[$0]?.data }, secret: { name in
                    secrets[name].map { secret in (secret.data ?? [:]).compactMapValues { String(validating: $0.bytes, as: UTF8.self) } }
                },
                podIPs: podIPs, hostIPs: host.hostIPs, nodeAllocatable: host.nodeAllocatable)
            process = try ContainerProcess.resolve(container, of: pod, image: configuration.config, context: context)
        } catch {
            let repeated: Bool
            if case .waiting(_, let message) = run.state { repeated = message == "\(error)" } else { repeated = false }
            run.state = .waiting(reason: "CreateContainerConfigError", message: "\(error)")
            // Not a crash: tried again soon (a missing ConfigMap may appear any moment).
            run.retryAt = now + 5
            if !repeated { logger.warning("\(error)") }
            await event("Failed", "Error: \(error)", warning: true, container: container)
            return
        }
        // 3. Replace the previous run (its log stays for `logs --previous`).
        let restartCount = run.hasRun ? min(run.restartCount, ContainerRun.maximumRestartCount) + 1 : run.restartCount
        let id = "\(uid)-\(container.name)-\(restartCount)"
        if let previous = run.id { await removeRun(previous) }
        await removeRun(id)
        let runDirectory = directory + "/runs/" + id
        do {
            let terminationLog = files.terminationMessagePath(container: container.name)
            var mounts = try files.mounts(for: container)
            mounts += try volumes.mounts(for: container, volumes: volumePaths ?? [:])
            var input = ContainerSpecBuilder.Input(
                pod: pod, container: container, process: process, imageUser: configuration.config?.user, rootfs: "",
                sandbox: hostNetwork ? nil : sandbox, cgroupsPath: podCgroup.flatMap { path in host.cgroups?.containerCgroupsPath(podPath: path, id: id) } ?? id, mounts: mounts, seccompProfileRoot: host.seccompProfileRoot,
                nodeMemoryCapacity: host.nodeMemoryCapacity)
            // The devices admission assigned (the same ones after an agent restart).
            input.devices = try host.devices?.devices(pod: uid, container: container.name) ?? []
            input.pluginAllocations = host.devices?.pluginAllocations(pod: uid, container: container.name) ?? []
            input.groupOOMKill = host.cgroups?.groupsOOMKills ?? false
            if let factor = host.cgroups?.memoryQoS { input.memoryQoS = (factor, host.nodeAllocatable["memory"]?.value ?? 0) }
            try await host.devices?.preStart(pod: uid, container: container.name)
            let imageID = image.repoDigests.first ?? image.id.description
            let bundleVersion = host.runtime.bundleVersion, stopSignal = configuration.config?.stopSignal
            let logPath = host.logPath(pod, container: container.name, restartCount: restartCount)
            let runtime = host.runtime, images = host.images, prepared = input
            // `kubectl attach` reaches the output and, with `stdin: true`, the container's stdin.
            let stdin: BuiltinRuntime.CreateOptions.Stdin = container.stdin == true ? (container.stdinOnce == true ? .once : .open) : .none
            // Mounts, files and the runtime's waits for its monitor: on the blocking pool.
            let spec = try await blocking {
                var input = prepared
                input.rootfs = try ContainerRootfs.mount(images.filesystem(of: image), containerDirectory: runDirectory)
                if FileTree.exists(terminationLog) { truncate(terminationLog, 0) }
                var spec = try ContainerSpecBuilder.build(input)
                if let bundleVersion { spec.ociVersion = bundleVersion }
                spec.annotations?[Self.restartCountAnnotation] = String(restartCount)
                spec.annotations?[Self.imageIDAnnotation] = imageID
                if let stopSignal { spec.annotations?[Self.stopSignalAnnotation] = stopSignal }
                // The configuration carries Secret values: on tmpfs, never on the flash with the rootfs.
                let bundle = try ContainerBundle.write(spec, runtimeRoot: runtime.root, id: id)
                let logFolder = String(logPath[..<logPath.lastIndex(of: "/")!])
                try FileTree.makeDirectories(logFolder, mode: 0o755)
                // The previous run's log stays (`logs --previous`); older ones go.
                for name in FileTree.list(logFolder) {
                    if let index = Int32(name.split(separator: ".").first ?? ""), index < restartCount &- 1 { unlink(logFolder + "/" + name) }
                }
                let options = BuiltinRuntime.CreateOptions(logPath: logPath, stdin: stdin, attach: true)
                let _: ContainerRecord = try runtime.create(id: id, bundle: bundle, options: options)
                try runtime.start(id: id)
                return spec
            }
            try? host.images.markUsed(image.id, by: id)
            run.id = id
            run.hasRun = true
            run.restartCount = restartCount
            run.imageID = imageID
            run.startedAt = self.now()
            run.stopSignal = configuration.config?.stopSignal
            run.hook = ContainerStopper.HookContext(env: spec.process?.env ?? [], user: spec.process?.user ?? RuntimeSpec.User(uid: 0, gid: 0),
                                                    podIP: podIPs.first, container: container)
            let startedAt = (try? runtime.record(id: id)).flatMap(\.startedAt).map(Self.timestamp(nanoseconds:)) ?? .now()
            run.state = .running(startedAt: startedAt)
            startProbes(container, run)
            logger.info("started container \(container.name) (\(id))")
            await event("Created", "Created container \(container.name)", container: container)
            await event("Started", "Started container \(container.name)", container: container)
        } catch {
            await removeRun(id)
            // The pod is going (deleted, evicted): nothing was started and nothing failed.
            if error is CancellationError || Task.isCancelled { return }
            let reason = error is RuntimeError ? "RunContainerError" : "CreateContainerError"
            run.state = .waiting(reason: reason, message: "\(error)")
            run.backoff.recordExit(started: now, exited: now)
            logger.warning("\(label) could not start: \(error)")
            await event("Failed", "Error: \(error)", warning: true, container: container)
            return
        }
        // 4. postStart: a failure kills the container (it is then restarted per policy).
        if let postStart = container.lifecycle?.postStart, let hook = run.hook {
            let deadline = ContinuousClock.now + .seconds(max(1, gracePeriod))
            let failure = await ContainerStopper.run(postStart, runtime: host.runtime, id: id, context: hook, until: deadline)
            // Cut short because the pod is going: no verdict on the hook (termination stops the container).
            if let failure, !Task.isCancelled {
                logger.warning("\(label): postStart hook failed: \(failure)")
                await event("FailedPostStartHook", failure, warning: true, container: container)
                _ = await ContainerStopper.stop(host.runtime, id: id, stopSignal: run.stopSignal, gracePeriodSeconds: gracePeriod, preStop: nil, context: hook)
            }
        }
    }

    /// Deletes a run from the runtime and its root; its image is no longer used by it.
    /// Removes one run: its process (killed), runtime state, cgroup, bundle and root. The
    /// runtime waits for the processes to exit and the cgroup to empty, so this runs on the
    /// blocking pool.
    func removeRun(_ id: String) async {
        probes.stop(containerID: id)
        let runtime = host.runtime, images = host.images, runDirectory = directory + "/runs/" + id
        _ = try? await blockingToTheEnd {
            if let annotations = try? runtime.record(id: id).annotations, let image = annotations[Self.imageIDAnnotation] {
                if let record = try? images.lookup(image) { try? images.release(record.id, by: id) }
            }
            try? runtime.delete(id: id, force: true)
            ContainerBundle.remove(runtimeRoot: runtime.root, id: id)
            try? ContainerRootfs.remove(containerDirectory: runDirectory)
        }
    }

    /// The container's image per its pull policy (Always for `:latest` or no tag).
    func pullImage(_ container: Container) async throws -> ImageRecord {
        guard let text = container.image, !text.isEmpty else {
            throw PodSetupProblem(reason: "InvalidImageName", message: "container \(container.name) has no image")
        }
        let reference: ImageReference
        do { reference = try ImageReference(parsing: text) } catch {
            throw PodSetupProblem(reason: "InvalidImageName", message: "Failed to apply default image tag \"\(text)\": \(error)")
        }
        let latest = reference.digest == nil && (reference.tag ?? "latest") == "latest"
        let policy = container.imagePullPolicy ?? (latest ? .always : .ifNotPresent)
        if policy != .always, let present = try host.images.lookup(text) {
            await event("Pulled", "Container image \"\(text)\" already present on machine", container: container)
            return present
        }
        if policy == .never {
            throw PodSetupProblem(reason: "ErrImageNeverPull", message: "Container image \"\(text)\" is not present with pull policy of Never")
        }
        var registry = host.registry
        for name in pod.spec?.imagePullSecrets?.compactMap(\.name) ?? [] {
            if let secret = secrets[name], let credentials = try? RegistryCredentials(pullSecret: secret) {
                registry.credentials.merge(credentials)
            }
        }
        await event("Pulling", "Pulling image \"\(text)\"", container: container)
        let began = ContinuousClock.now
        do {
            let result = try await host.images.pullImage(reference, registry: registry)
            logger.info("pulled image \(text) (\(result.downloadedBytes) bytes downloaded)")
            await event("Pulled", "Successfully pulled image \"\(text)\" in \(ContinuousClock.now - began) (\(result.image.size) bytes)", container: container)
            return result.image
        } catch {
            if Task.isCancelled { throw CancellationError() }
            let message = "Failed to pull image \"\(text)\": \(error)"
            await event("Failed", message, warning: true, container: container)
            throw PodSetupProblem(reason: "ErrImagePull", message: message)
        }
    }
}
