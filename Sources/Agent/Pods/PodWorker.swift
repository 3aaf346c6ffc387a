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

/// One pod's serial worker (the kubelet's pod worker): sets the pod up (sandbox, network,
/// volumes, files), runs its init containers in order and then its containers, restarts them
/// per the restart policy with the crash-loop back-off, runs their probes and hooks, reports
/// status on every change, and on deletion stops everything within the grace period and
/// releases what the pod held. Containers outlive the agent: a new worker adopts the running
/// containers of its pod instead of starting them again.
public actor PodWorker {
    public let uid: String
    var pod: Pod
    /// No longer wanted by any source (without an API deletion: nothing to delete there).
    var unwanted = false
    let host: PodHost
    let logger: Logger
    let directory: String
    var files: PodFiles { PodFiles(podDirectory: directory) }
    var volumes: PodVolumes { PodVolumes(podDirectory: directory) }

    var runs: [String: ContainerRun] = [:]
    var sandbox: PodSandbox?
    var networkReady = false
    var podIPs: [String] = []
    var volumePaths: [String: String]?
    var lastVolumeRefresh: Int64 = 0
    var lastLogCheck: Int64 = 0
    var setupProblem: (reason: String, message: String)?
    var setupBackoff = RestartBackoff()
    var configMaps: [String: ConfigMap] = [:]
    var secrets: [String: Secret] = [:]
    var startTime: Timestamp?
    var lastStatus: PodStatus?
    /// Succeeded or Failed: nothing is started any more.
    var finalPhase: (phase: PodPhase, reason: String?, message: String?)?
    var changed = true

    public init(pod: Pod, host: PodHost) {
        uid = pod.metadata.uid ?? ""
        self.pod = pod
        self.host = host
        var logger = host.logger
        logger[metadataKey: "pod"] = "\(pod.metadata.namespace ?? "default")/\(pod.metadata.name ?? "")"
        self.logger = logger
        directory = host.podDirectory(uid: pod.metadata.uid ?? "")
        lastStatus = pod.status
        startTime = pod.status?.startTime
        if let phase = pod.status?.phase, phase == .succeeded || phase == .failed {
            finalPhase = (phase, pod.status?.reason, pod.status?.message)
        }
    }

    /// A newer version of the pod (newest wins; the next sync uses it).
    public func update(_ newer: Pod) {
        pod = newer
        changed = true
    }

    /// The pod is not wanted here any more: stop it (without deleting it from the API).
    public func remove() {
        unwanted = true
        changed = true
    }

    var terminating: Bool { unwanted || pod.metadata.deletionTimestamp != nil }

    /// Runs until the pod is terminated (or the task is cancelled: the agent stops, the
    /// containers keep running and are adopted by the next agent).
    public func run() async {
        await adopt()
        while !Task.isCancelled {
            if terminating {
                await terminate()
                return
            }
            await sync()
            // Wake early when a newer spec or a deletion arrives.
            changed = false
            var waited: Duration = .zero
            while waited < host.syncInterval && !changed && !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
                waited += .milliseconds(100)
            }
        }
    }

    static func now() -> Int64 { Timestamp.now().seconds }

    /// Records an event about the pod (or one of its containers).
    func event(_ reason: String, _ message: String, warning: Bool = false, container: Container? = nil) async {
        var fieldPath: String?
        if let container {
            let isInit = pod.spec?.initContainers?.contains { $0.name == container.name } == true
            fieldPath = "spec.\(isInit ? "initContainers" : "containers"){\(container.name)}"
        }
        await host.events?.record(pod, type: warning ? "Warning" : "Normal", reason: reason, message: message, fieldPath: fieldPath)
    }

    static func timestamp(nanoseconds: Int64) -> Timestamp {
        Timestamp(seconds: nanoseconds / 1_000_000_000, nanoseconds: Int32(nanoseconds % 1_000_000_000))
    }

    func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(body)
    }

    var allContainers: [Container] { (pod.spec?.initContainers ?? []) + (pod.spec?.containers ?? []) }
    var hostNetwork: Bool { pod.spec?.hostNetwork == true }

    // MARK: adoption

    /// After an agent restart: the pod's sandbox and network, and the newest run of each
    /// container (running or finished) as they are, restart counts kept.
    func adopt() async {
        let candidate = PodSandbox(directory: directory + "/sandbox")
        if !hostNetwork, candidate.exists {
            sandbox = candidate
            if let network = try? await host.network.network(), let attachment = network.attachment(sandboxID: uid) {
                podIPs = attachment.ips
                networkReady = true
            }
        }
        let runtime = host.runtime
        let mine = runtime.list().filter { $0.annotations?["io.kubernetes.pod.uid"] == uid }
        var newest: [String: (OCIState, Int32)] = [:]
        for state in mine {
            guard let name = state.annotations?["io.kubernetes.container.name"],
                  let count = state.annotations?[Self.restartCountAnnotation].flatMap({ Int32($0) }) else { continue }
            if let existing = newest[name], existing.1 >= count {
                try? runtime.delete(id: state.id, force: true)
                continue
            }
            if let existing = newest[name] { try? runtime.delete(id: existing.0.id, force: true) }
            newest[name] = (state, count)
        }
        for container in allContainers {
            guard let (state, count) = newest[container.name] else { continue }
            var run = ContainerRun(container: container)
            run.id = state.id
            run.restartCount = count
            run.hasRun = true
            run.imageID = state.annotations?[Self.imageIDAnnotation] ?? ""
            let record = try? runtime.record(id: state.id)
            let started = record?.startedAt ?? record?.createdAt ?? 0
            run.startedAt = started / 1_000_000_000
            if let spec = try? BuiltinRuntime.loadSpec(bundle: state.bundle), let process = spec.process {
                run.hook = ContainerStopper.HookContext(env: process.env ?? [], user: process.user, podIP: podIPs.first, container: container)
            }
            run.stopSignal = state.annotations?[Self.stopSignalAnnotation]
            if state.status == .running || state.status == .created {
                run.state = .running(startedAt: Self.timestamp(nanoseconds: started))
            } else {
                run.state = finished(run, container: container, id: state.id)
            }
            runs[container.name] = run
            logger.info("adopted container \(container.name) (\(state.id), \(state.status.rawValue), restarts \(count))")
        }
        if !mine.isEmpty, startTime == nil { startTime = .now() }
    }

    static let restartCountAnnotation = "io.iotkube.container.restartCount"
    static let imageIDAnnotation = "io.iotkube.container.imageID"
    static let stopSignalAnnotation = "io.iotkube.container.stopSignal"

    // MARK: sync

    func sync() async {
        let now = Self.now()
        if startTime == nil { startTime = .now() }
        observeExits(now: now)
        if finalPhase == nil, let deadline = pod.spec?.activeDeadlineSeconds, let startTime, now - startTime.seconds >= deadline {
            logger.notice("active deadline of \(deadline)s passed: stopping the pod")
            finalPhase = (.failed, "DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
            await stopAll(gracePeriod: gracePeriod)
            observeExits(now: Self.now())
        }
        if finalPhase == nil {
            await syncContainers(now: now)
        }
        await report()
        if let finalPhase, networkReady || sandbox != nil {
            // A finished pod keeps its status but not its address.
            logger.info("pod \(finalPhase.phase.rawValue): releasing its network")
            await stopAll(gracePeriod: gracePeriod)
            await releaseNetwork()
        }
    }

    func syncContainers(now: Int64) async {
        guard await setUpPod(now: now) else { return }
        // Init containers in order; sidecars (restartPolicy Always) keep running.
        for container in pod.spec?.initContainers ?? [] {
            let sidecar = container.restartPolicy == .always
            var run = runs[container.name] ?? freshRun(container)
            if sidecar {
                await keepRunning(container, &run, restart: true, now: now)
                runs[container.name] = run
                if !run.started { return }
                continue
            }
            if run.exitCode == 0 {
                runs[container.name] = run
                continue
            }
            if run.isRunning {
                runs[container.name] = run
                await probe(container, now: now)
                return
            }
            if run.exitCode != nil || run.lastTermination != nil, pod.spec?.restartPolicy == .never {
                runs[container.name] = run
                finalPhase = (.failed, nil, nil)
                return
            }
            await keepRunning(container, &run, restart: true, now: now)
            runs[container.name] = run
            return
        }
        let policy = pod.spec?.restartPolicy ?? .always
        for container in pod.spec?.containers ?? [] {
            var run = runs[container.name] ?? freshRun(container)
            let restart: Bool
            switch policy {
            case .always: restart = true
            case .onFailure: restart = run.exitCode != 0
            case .never: restart = false
            }
            await keepRunning(container, &run, restart: restart, now: now)
            runs[container.name] = run
        }
        for container in allContainers where runs[container.name]?.isRunning == true {
            await probe(container, now: now)
        }
        if now - lastLogCheck >= 10 {
            lastLogCheck = now
            let rotation = host.logRotation
            for container in allContainers {
                guard let run = runs[container.name], run.isRunning else { continue }
                let path = host.logPath(pod, container: container.name, restartCount: run.restartCount)
                do { try rotation.rotateIfNeeded(path) } catch { logger.warning("rotating \(path): \(error)") }
            }
        }
        // Every container ended for good (Never / OnFailure after success): the pod is done.
        let apps = (pod.spec?.containers ?? []).compactMap { runs[$0.name] }
        if policy != .always, apps.count == pod.spec?.containers.count, apps.allSatisfy({ $0.exitCode != nil }) {
            let done = apps.allSatisfy { $0.exitCode == 0 } || policy == .never
            if done { finalPhase = (apps.allSatisfy { $0.exitCode == 0 } ? .succeeded : .failed, nil, nil) }
        }
    }

    /// A container without a run here yet. Runs before a reboot left their log files (and the
    /// API may remember their count): the next run continues the restart count.
    func freshRun(_ container: Container) -> ContainerRun {
        var run = ContainerRun(container: container)
        let folder = host.logDirectory + "/" + PodHost.logFolder(pod) + "/" + container.name
        let logged = FileTree.list(folder).compactMap { name in name.hasSuffix(".log") ? Int32(name.dropLast(4)) : nil }.max()
        let reported = ((pod.status?.containerStatuses ?? []) + (pod.status?.initContainerStatuses ?? []))
            .first { $0.name == container.name && $0.containerID != nil }?.restartCount
        if let previous = [logged, reported].compactMap({ $0 }).max() {
            run.restartCount = previous
            run.hasRun = true
            run.lastTermination = .terminated(exitCode: 255, signal: 0, oomKilled: false, execError: nil, startedAt: nil, finishedAt: .now(),
                                              message: "the container's previous run ended with the node (reboot or runtime state lost)")
        }
        return run
    }

    /// Starts a container that has not run, or restarts one that ended when `restart` allows
    /// and the back-off has passed.
    func keepRunning(_ container: Container, _ run: inout ContainerRun, restart: Bool, now: Int64) async {
        switch run.state {
        case .running:
            return
        case .terminated:
            guard restart else { return }
            run.lastTermination = run.state
            run.lastID = run.id
            run.state = .waiting(reason: "CrashLoopBackOff", message: run.backoff.message(container: container.name, pod: podLabel))
            changed = true
            fallthrough
        case .waiting:
            if run.backoff.isBackingOff(at: now) {
                if case .waiting(let reason, _) = run.state, reason == "CrashLoopBackOff", !run.backoffReported {
                    run.backoffReported = true
                    await event("BackOff", "Back-off restarting failed container \(container.name) in pod \(pod.metadata.name ?? "")", warning: true, container: container)
                }
                return
            }
            if run.pullBackoff.isBackingOff(at: now) || now < run.retryAt { return }
            run.backoffReported = false
            await start(container, &run)
        }
    }

    var podLabel: String { "\(pod.metadata.name ?? "")_\(pod.metadata.namespace ?? "default")(\(uid))" }

    var gracePeriod: Int64 {
        max(0, pod.metadata.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30)
    }

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
            run.state = finished(run, container: container, id: id)
            if case .terminated(_, _, _, _, _, let finishedAt, _) = run.state {
                run.backoff.recordExit(started: run.startedAt, exited: finishedAt.seconds)
            }
            if let exitCode = run.exitCode {
                logger.info("container \(container.name) exited with \(exitCode)")
            }
            runs[container.name] = run
            changed = true
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

    // MARK: pod setup

    /// Sandbox, network, pod files and volumes; false (with the reason in the status) when one
    /// of them cannot be made yet.
    func setUpPod(now: Int64) async -> Bool {
        let refreshDue = now - lastVolumeRefresh >= 60
        if setupProblem == nil, volumePaths != nil, (networkReady || hostNetwork), !refreshDue { return true }
        if setupProblem != nil, setupBackoff.isBackingOff(at: now) { return false }
        do {
            try await setUp(now: now)
            if setupProblem != nil { changed = true }
            setupProblem = nil
            setupBackoff = RestartBackoff()
            return true
        } catch let problem as PodSetupProblem {
            if setupProblem?.message != problem.message { logger.warning("pod setup: \(problem.message)") }
            let reason = problem.message.hasPrefix("MountVolume") ? "FailedMount" : "FailedCreatePodSandBox"
            await event(reason, problem.message, warning: true)
            setupProblem = (problem.reason, problem.message)
            setupBackoff.recordExit(started: now, exited: now)
            changed = true
            // Volumes being refreshed keep the last good contents.
            return volumePaths != nil && (networkReady || hostNetwork)
        } catch {
            setupProblem = ("ContainerCreating", "\(error)")
            setupBackoff.recordExit(started: now, exited: now)
            return false
        }
    }

    struct PodSetupProblem: Error {
        var reason: String
        var message: String
    }

    func setUp(now: Int64) async throws {
        await fetchReferences()
        try FileTree.makeDirectories(directory, mode: 0o750)
        if !hostNetwork, sandbox == nil {
            let directory = self.directory, hostname = PodDNS.hostname(for: pod), helper = host.runtime.helper
            do {
                sandbox = try await blocking {
                    // Files of a sandbox that did not survive a reboot: the namespaces are gone.
                    if FileTree.exists(directory + "/sandbox") {
                        try? PodSandbox(directory: directory + "/sandbox").remove(helper: helper)
                        try FileTree.remove(directory + "/sandbox")
                    }
                    return try PodSandbox.create(directory: directory + "/sandbox", hostname: hostname, helper: helper)
                }
            } catch { throw PodSetupProblem(reason: "ContainerCreating", message: "Failed to create pod sandbox: \(error)") }
            networkReady = false
        }
        if !hostNetwork, !networkReady, let sandbox {
            let attachments: PodNetworkAttachments
            do { attachments = try await host.network.network() } catch {
                throw PodSetupProblem(reason: "ContainerCreating", message: "network is not ready: \(error)")
            }
            let mappings = (pod.spec?.containers ?? []).flatMap { $0.ports ?? [] }.compactMap { port -> PortMapping? in
                guard let hostPort = port.hostPort, hostPort > 0 else { return nil }
                return PortMapping(hostPort: Int(hostPort), containerPort: Int(port.containerPort), protocol: port.protocol?.rawValue ?? "TCP", hostIP: port.hostIP ?? "")
            }
            let target = PodNetworkAttachments.Pod(sandboxID: uid, namespace: pod.metadata.namespace ?? "default", name: pod.metadata.name ?? "",
                                                   uid: uid, networkNamespace: sandbox.networkNamespace, portMappings: mappings)
            do {
                let attachment = try await blocking {
                    // An attachment of the pod's previous sandbox (before a reboot) is released first.
                    if attachments.attachment(sandboxID: target.sandboxID) != nil { try? attachments.delete(sandboxID: target.sandboxID) }
                    return try attachments.add(target)
                }
                podIPs = attachment.ips
                networkReady = true
                logger.info("pod network ready: \(attachment.ips.joined(separator: ","))")
            } catch {
                throw PodSetupProblem(reason: "ContainerCreating", message: "failed to set up the pod network: \(error)")
            }
        }
        if hostNetwork { podIPs = host.hostIPs }
        do {
            _ = try files.write(for: pod, dns: host.dns, podIPs: podIPs, nodeHosts: host.nodeHosts, nodeHostname: host.nodeHostname)
        } catch { throw PodSetupProblem(reason: "ContainerCreating", message: "\(error)") }
        let configMaps = self.configMaps, secrets = self.secrets
        let sources = VolumePayload.Sources(configMap: { configMaps[$0] }, secret: { secrets[$0] })
        let memoryLimit = (pod.spec?.containers ?? []).compactMap { $0.resources?.limits?["memory"]?.byteCount }.reduce(0, +)
        do {
            volumePaths = try volumes.prepare(pod, sources: sources, memoryLimit: memoryLimit > 0 ? memoryLimit : host.nodeMemoryCapacity / 2)
            lastVolumeRefresh = now
        } catch {
            throw PodSetupProblem(reason: "ContainerCreating", message: "MountVolume.SetUp failed: \(error)")
        }
    }

    /// The ConfigMaps and Secrets the pod uses, from the API (kept when it cannot be reached).
    func fetchReferences() async {
        guard let client = host.client() else { return }
        let references = PodReferences(pod)
        let namespace = pod.metadata.namespace ?? "default"
        for name in references.configMaps.sorted() {
            do { configMaps[name] = try await client.get(ConfigMap.self, namespace: namespace, name: name) } catch {
                if error.statusCode == 404 { configMaps[name] = nil }
            }
        }
        for name in references.secrets.sorted() {
            do { secrets[name] = try await client.get(Secret.self, namespace: namespace, name: name) } catch {
                if error.statusCode == 404 { secrets[name] = nil }
            }
        }
    }

    // MARK: starting a container

    func start(_ container: Container, _ run: inout ContainerRun) async {
        let now = Self.now()
        let label = "container \(container.name)"
        // 1. The image, per the pull policy.
        let image: ImageRecord
        do { image = try await pullImage(container) } catch let problem as PodSetupProblem {
            run.pullFailures += 1
            run.pullBackoff.recordExit(started: now, exited: now)
            let reason = problem.reason == "ErrImagePull" && run.pullFailures > 1 ? "ImagePullBackOff" : problem.reason
            if run.pullFailures == 1 || run.pullFailures % 10 == 0 { logger.warning("\(label): \(problem.message)") }
            if reason == "ImagePullBackOff" { await event("BackOff", "Back-off pulling image \"\(container.image ?? "")\"", warning: true, container: container) }
            if problem.reason == "ErrImageNeverPull" || problem.reason == "InvalidImageName" { await event("Failed", problem.message, warning: true, container: container) }
            run.state = .waiting(reason: reason, message: problem.message)
            changed = true
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
            changed = true
            return
        }
        // 3. Replace the previous run (its log stays for `logs --previous`).
        let restartCount = run.hasRun ? run.restartCount + 1 : run.restartCount
        let id = "\(uid)-\(container.name)-\(restartCount)"
        if let previous = run.id { removeRun(previous) }
        removeRun(id)
        let runDirectory = directory + "/runs/" + id
        do {
            let rootfs = try ContainerRootfs.mount(host.images.filesystem(of: image), containerDirectory: runDirectory)
            let terminationLog = files.terminationMessagePath(container: container.name)
            if FileTree.exists(terminationLog) { truncate(terminationLog, 0) }
            var mounts = try files.mounts(for: container)
            mounts += try PodVolumes.mounts(for: container, volumes: volumePaths ?? [:])
            var spec = try ContainerSpecBuilder.build(ContainerSpecBuilder.Input(
                pod: pod, container: container, process: process, imageUser: configuration.config?.user, rootfs: rootfs,
                sandbox: hostNetwork ? nil : sandbox, cgroupsPath: id, mounts: mounts, seccompProfileRoot: host.seccompProfileRoot,
                nodeMemoryCapacity: host.nodeMemoryCapacity))
            let imageID = image.repoDigests.first ?? image.id.description
            spec.annotations?[Self.restartCountAnnotation] = String(restartCount)
            spec.annotations?[Self.imageIDAnnotation] = imageID
            if let signal = configuration.config?.stopSignal { spec.annotations?[Self.stopSignalAnnotation] = signal }
            try AtomicFile.write(try KubeJSON.encode(spec), to: runDirectory + "/config.json", mode: 0o600)
            let logPath = host.logPath(pod, container: container.name, restartCount: restartCount)
            let logFolder = String(logPath[..<logPath.lastIndex(of: "/")!])
            try FileTree.makeDirectories(logFolder, mode: 0o755)
            // The previous run's log stays (`logs --previous`); older ones go.
            for name in FileTree.list(logFolder) {
                if let index = Int32(name.split(separator: ".").first ?? ""), index < restartCount - 1 { unlink(logFolder + "/" + name) }
            }
            let runtime = host.runtime
            try await blocking {
                let _: ContainerRecord = try runtime.create(id: id, bundle: runDirectory, options: BuiltinRuntime.CreateOptions(logPath: logPath))
                try runtime.start(id: id)
            }
            try? host.images.markUsed(image.id, by: id)
            run.id = id
            run.hasRun = true
            run.restartCount = restartCount
            run.imageID = imageID
            run.startedAt = Self.now()
            run.stopSignal = configuration.config?.stopSignal
            run.hook = ContainerStopper.HookContext(env: spec.process?.env ?? [], user: spec.process?.user ?? RuntimeSpec.User(uid: 0, gid: 0),
                                                    podIP: podIPs.first, container: container)
            run.resetProbes(container)
            let startedAt = (try? runtime.record(id: id)).flatMap(\.startedAt).map(Self.timestamp(nanoseconds:)) ?? .now()
            run.state = .running(startedAt: startedAt)
            changed = true
            logger.info("started container \(container.name) (\(id))")
            await event("Created", "Created container \(container.name)", container: container)
            await event("Started", "Started container \(container.name)", container: container)
        } catch {
            removeRun(id)
            let reason = error is RuntimeError ? "RunContainerError" : "CreateContainerError"
            run.state = .waiting(reason: reason, message: "\(error)")
            run.backoff.recordExit(started: now, exited: now)
            logger.warning("\(label) could not start: \(error)")
            await event("Failed", "Error: \(error)", warning: true, container: container)
            changed = true
            return
        }
        // 4. postStart: a failure kills the container (it is then restarted per policy).
        if let postStart = container.lifecycle?.postStart, let hook = run.hook {
            let deadline = ContinuousClock.now + .seconds(max(1, gracePeriod))
            if let failure = await ContainerStopper.run(postStart, runtime: host.runtime, id: id, context: hook, until: deadline) {
                logger.warning("\(label): postStart hook failed: \(failure)")
                await event("FailedPostStartHook", failure, warning: true, container: container)
                _ = await ContainerStopper.stop(host.runtime, id: id, stopSignal: run.stopSignal, gracePeriodSeconds: gracePeriod, preStop: nil, context: hook)
            }
        }
    }

    /// Deletes a run from the runtime and its root; its image is no longer used by it.
    func removeRun(_ id: String) {
        let runtime = host.runtime
        if let annotations = try? runtime.record(id: id).annotations, let image = annotations[Self.imageIDAnnotation] {
            if let record = try? host.images.lookup(image) { try? host.images.release(record.id, by: id) }
        }
        try? runtime.delete(id: id, force: true)
        try? ContainerRootfs.remove(containerDirectory: directory + "/runs/" + id)
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
            let result = try await host.images.pull(reference, registry: registry)
            logger.info("pulled image \(text) (\(result.downloadedBytes) bytes downloaded)")
            await event("Pulled", "Successfully pulled image \"\(text)\" in \(ContinuousClock.now - began) (\(result.image.size) bytes)", container: container)
            return result.image
        } catch {
            let message = "Failed to pull image \"\(text)\": \(error)"
            await event("Failed", message, warning: true, container: container)
            throw PodSetupProblem(reason: "ErrImagePull", message: message)
        }
    }

    // MARK: probes

    func probe(_ container: Container, now: Int64) async {
        guard var run = runs[container.name], run.isRunning, let id = run.id else { return }
        let startedBefore = run.started, readyBefore = run.ready
        var kill: String?
        if var startup = run.startup, startup.result != .success {
            if startup.isDue(now: now, started: run.startedAt) {
                let outcome = await perform(container.startupProbe!, container: container, run: run, timeout: startup.timeout)
                startup.record(success: outcome.success, message: outcome.message, at: now)
                if !outcome.success { await event("Unhealthy", "Startup probe failed: \(outcome.message ?? "")", warning: true, container: container) }
                if startup.result == .failure { kill = "Startup probe failed: \(outcome.message ?? "")" }
                run.startup = startup
            }
        } else {
            if var liveness = run.liveness, liveness.isDue(now: now, started: run.startedAt) {
                let outcome = await perform(container.livenessProbe!, container: container, run: run, timeout: liveness.timeout)
                liveness.record(success: outcome.success, message: outcome.message, at: now)
                if !outcome.success { await event("Unhealthy", "Liveness probe failed: \(outcome.message ?? "")", warning: true, container: container) }
                if liveness.result == .failure { kill = "Liveness probe failed: \(outcome.message ?? "")" }
                run.liveness = liveness
            }
            if var readiness = run.readiness, readiness.isDue(now: now, started: run.startedAt) {
                let outcome = await perform(container.readinessProbe!, container: container, run: run, timeout: readiness.timeout)
                if !outcome.success, run.started { await event("Unhealthy", "Readiness probe failed: \(outcome.message ?? "")", warning: true, container: container) }
                if readiness.record(success: outcome.success, message: outcome.message, at: now) {
                    logger.info("container \(container.name) readiness: \(outcome.success ? "ready" : "not ready (\(outcome.message ?? ""))")")
                }
                run.readiness = readiness
            }
        }
        if run.started != startedBefore || run.ready != readyBefore { changed = true }
        runs[container.name] = run
        if let kill {
            logger.notice("container \(container.name): \(kill); restarting it")
            let which = kill.hasPrefix("Startup") ? "startup" : "liveness"
            await event("Killing", "Container \(container.name) failed \(which) probe, will be restarted", container: container)
            let probe = container.startupProbe != nil && !startedBefore ? container.startupProbe : container.livenessProbe
            let grace = probe?.terminationGracePeriodSeconds ?? gracePeriod
            if let hook = run.hook {
                _ = await ContainerStopper.stop(host.runtime, id: id, stopSignal: run.stopSignal, gracePeriodSeconds: grace,
                                                preStop: container.lifecycle?.preStop, context: hook)
            }
            observeExits(now: Self.now())
        }
    }

    func perform(_ probe: Probe, container: Container, run: ContainerRun, timeout: Int64) async -> (success: Bool, message: String?) {
        let address = hostNetwork ? "127.0.0.1" : podIPs.first ?? "127.0.0.1"
        let outcome: ProbeActions.Outcome
        if let exec = probe.exec, let id = run.id, let hook = run.hook {
            let runtime = host.runtime
            outcome = (try? await blocking {
                ProbeActions.exec(runtime, id: id, command: exec.command ?? [], env: hook.env, user: hook.user, timeoutSeconds: timeout)
            }) ?? .failure("exec probe could not run")
        } else if let http = probe.httpGet {
            do {
                let port = try ProbeActions.port(http.port, in: container)
                outcome = await ProbeActions.http(secure: http.scheme == .https, host: http.host ?? address, port: port, path: http.path ?? "/",
                                                  headers: http.httpHeaders ?? [], timeoutSeconds: timeout)
            } catch { outcome = .failure("\(error)") }
        } else if let tcp = probe.tcpSocket {
            do {
                let port = try ProbeActions.port(tcp.port, in: container)
                outcome = await ProbeActions.tcp(host: tcp.host ?? address, port: port, timeoutSeconds: timeout)
            } catch { outcome = .failure("\(error)") }
        } else if let grpc = probe.grpc {
            // gRPC health checking speaks HTTP/2; until it is built, a listening port is the best sign.
            outcome = await ProbeActions.tcp(host: address, port: Int(grpc.port), timeoutSeconds: timeout)
        } else {
            outcome = .failure("the probe has no handler")
        }
        if case .failure(let message) = outcome { return (false, message) }
        return (true, nil)
    }

    // MARK: status

    func report() async {
        let status = currentStatus()
        guard status != lastStatus else { return }
        lastStatus = status
        await host.status.report(pod, status: status)
    }

    func observation(_ container: Container) -> PodStatusBuilder.Observation {
        var state = runs[container.name]?.state ?? .waiting(reason: "ContainerCreating", message: nil)
        if runs[container.name] == nil || runs[container.name]?.hasRun == false, case .waiting(let reason, _) = state, reason == "ContainerCreating",
           let setupProblem {
            state = .waiting(reason: setupProblem.reason, message: setupProblem.message)
        }
        let run = runs[container.name]
        var observed = PodStatusBuilder.Observation(
            name: container.name, image: container.image ?? "", imageID: run?.imageID ?? "",
            containerID: run?.hasRun == true ? run?.id.map { "iotkube://" + $0 } : nil, state: state,
            lastTermination: run?.lastTermination, restartCount: run?.restartCount ?? 0, ready: run?.ready ?? false, started: run?.started ?? false)
        observed.lastContainerID = run?.lastID.map { "iotkube://" + $0 }
        return observed
    }

    func currentStatus() -> PodStatus {
        let initContainers = pod.spec?.initContainers ?? []
        let initializing = initContainers.contains { container in
            let run = runs[container.name]
            return container.restartPolicy == .always ? run?.started != true && run?.hasRun != true : run?.exitCode != 0
        }
        var initObservations = initContainers.map(observation)
        // Init containers not reached yet wait for the ones before them.
        if let firstWaiting = initContainers.firstIndex(where: { runs[$0.name]?.exitCode != 0 && $0.restartPolicy != .always }) {
            for index in initObservations.indices where index > firstWaiting && runs[initContainers[index].name] == nil {
                initObservations[index].state = .waiting(reason: "PodInitializing", message: nil)
            }
        }
        var containerObservations = (pod.spec?.containers ?? []).map(observation)
        if initializing {
            for index in containerObservations.indices where runs[containerObservations[index].name] == nil {
                containerObservations[index].state = .waiting(reason: "PodInitializing", message: nil)
            }
        }
        var status = PodStatusBuilder.build(
            pod: pod, previous: lastStatus, initContainers: initObservations, containers: containerObservations,
            initializing: initializing && finalPhase == nil, sandboxReady: hostNetwork ? volumePaths != nil : networkReady,
            podIPs: podIPs, hostIPs: host.hostIPs, startTime: startTime, now: .now())
        if let finalPhase {
            status.phase = finalPhase.phase
            status.reason = finalPhase.reason
            status.message = finalPhase.message
        }
        return status
    }

    // MARK: termination

    /// Stops every running container: app containers first (each with its preStop hook), then
    /// sidecars, within the grace period.
    func stopAll(gracePeriod: Int64) async {
        let runtime = host.runtime
        for container in allContainers where runs[container.name]?.isRunning == true {
            await event("Killing", "Stopping container \(container.name)", container: container)
        }
        let deadline = Self.now() + gracePeriod
        let groups = [pod.spec?.containers ?? [], (pod.spec?.initContainers ?? []).reversed()]
        for containers in groups {
            let targets = containers.compactMap { container -> (Container, ContainerRun)? in
                guard let run = runs[container.name], run.isRunning, run.id != nil, run.hook != nil else { return nil }
                return (container, run)
            }
            let left = max(0, deadline - Self.now())
            await withTaskGroup(of: Void.self) { group in
                for (container, run) in targets {
                    group.addTask {
                        _ = await ContainerStopper.stop(runtime, id: run.id!, stopSignal: run.stopSignal, gracePeriodSeconds: left,
                                                        preStop: container.lifecycle?.preStop, context: run.hook!)
                    }
                }
            }
        }
        // Runs adopted without a hook context: stop them by signal alone.
        for container in allContainers {
            guard let run = runs[container.name], run.isRunning, let id = run.id, run.hook == nil else { continue }
            let context = ContainerStopper.HookContext(env: [], user: RuntimeSpec.User(uid: 0, gid: 0), podIP: nil, container: container)
            _ = await ContainerStopper.stop(runtime, id: id, stopSignal: run.stopSignal, gracePeriodSeconds: max(0, deadline - Self.now()), preStop: nil, context: context)
        }
        observeExits(now: Self.now())
    }

    func releaseNetwork() async {
        var known = await host.network.cached()
        if known == nil { known = try? await host.network.network() }
        if networkReady, let attachments = known {
            let uid = self.uid
            do {
                try await blocking { try attachments.delete(sandboxID: uid) }
                networkReady = false
            } catch {
                logger.warning("releasing the pod network: \(error)")
            }
        }
        if let sandbox {
            let helper = host.runtime.helper
            do {
                try await blocking { try sandbox.remove(helper: helper) }
                self.sandbox = nil
            } catch {
                logger.warning("removing the pod sandbox: \(error)")
            }
        }
        podIPs = hostNetwork ? podIPs : []
    }

    /// The pod is deleted (or unwanted): containers stopped within the grace period, their
    /// runs, network, sandbox, volumes and files removed, the final status written and the
    /// API object deleted when the API asked for the deletion.
    func terminate() async {
        logger.info("stopping pod (grace period \(gracePeriod)s)")
        await stopAll(gracePeriod: gracePeriod)
        await report()
        for container in allContainers {
            if let id = runs[container.name]?.id { removeRun(id) }
        }
        for id in FileTree.list(directory + "/runs") { removeRun(id) }
        // Anything the runtime still has of this pod (runs of containers no longer in the spec).
        for state in host.runtime.list() where state.annotations?["io.kubernetes.pod.uid"] == uid { removeRun(state.id) }
        let attached = await host.network.cached()?.attachment(sandboxID: uid) != nil
        networkReady = networkReady || attached
        await releaseNetwork()
        do {
            try volumes.tearDown()
            try FileTree.remove(directory)
        } catch {
            logger.warning("removing the pod's files: \(error)")
        }
        await host.status.finish(uid: uid, deleteFromAPI: !unwanted && pod.metadata.deletionTimestamp != nil)
        logger.info("pod stopped and removed")
    }
}
