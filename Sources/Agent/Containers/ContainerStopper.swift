#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import KubeModel
import OCI
import Runtime

/// Stops a container as the kubelet does: the preStop hook first (within the grace period), then
/// the stop signal (the image's STOPSIGNAL, else SIGTERM), then SIGKILL once the grace period is
/// over.
public enum ContainerStopper {
    public struct Outcome: Sendable, Hashable {
        /// The container ignored the stop signal and was killed when the grace period ran out.
        public var killed: Bool
        /// Why the preStop hook failed (it does not stop the termination).
        public var hookFailure: String?
    }

    /// What a hook needs to reach the container: its environment and user for exec, the pod IP for httpGet.
    public struct HookContext: Sendable {
        public var env: [String]
        public var user: RuntimeSpec.User
        public var podIP: String?
        public var container: Container
        public init(env: [String], user: RuntimeSpec.User, podIP: String?, container: Container) {
            self.env = env
            self.user = user
            self.podIP = podIP
            self.container = container
        }
    }

    public static func stop(
        _ runtime: any PodRuntime, id: String, stopSignal: String?, gracePeriodSeconds: Int64, preStop: LifecycleHandler?, context: HookContext
    ) async -> Outcome {
        // A stop once begun runs to its end: a cancelled caller (a sync cut short by a
        // deletion) must neither cut the grace period short nor poll without sleeping.
        await Task {
            await stopToTheEnd(runtime, id: id, stopSignal: stopSignal, gracePeriodSeconds: gracePeriodSeconds, preStop: preStop, context: context)
        }.value
    }

    private static func stopToTheEnd(
        _ runtime: any PodRuntime, id: String, stopSignal: String?, gracePeriodSeconds: Int64, preStop: LifecycleHandler?, context: HookContext
    ) async -> Outcome {
        let deadline = ContinuousClock.now + .seconds(SpecSeconds.bounded(gracePeriodSeconds))
        var hookFailure: String?
        if let preStop, isRunning(runtime, id) {
            hookFailure = await run(preStop, runtime: runtime, id: id, context: context, until: deadline)
        }
        if isRunning(runtime, id) {
            try? runtime.kill(id: id, signal: signalNumber(stopSignal))
        }
        while isRunning(runtime, id) && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(100))
        }
        var killed = false
        if isRunning(runtime, id) {
            killed = true
            try? runtime.kill(id: id, signal: SIGKILL)
            for _ in 0..<100 where isRunning(runtime, id) { try? await Task.sleep(for: .milliseconds(50)) }
        }
        return Outcome(killed: killed, hookFailure: hookFailure)
    }

    /// Runs a lifecycle hook (postStart or preStop) bounded by `deadline`; nil when it succeeded.
    public static func run(_ handler: LifecycleHandler, runtime: any PodRuntime, id: String, context: HookContext, until deadline: ContinuousClock.Instant) async -> String? {
        let left = max(1, Int64((deadline - ContinuousClock.now).components.seconds))
        let outcome: ProbeActions.Outcome
        if let exec = handler.exec {
            outcome = await ProbeActions.exec(runtime, id: id, command: exec.command ?? [], env: context.env, user: context.user, timeoutSeconds: left)
        } else if let http = handler.httpGet {
            do {
                let port = try ProbeActions.port(http.port, in: context.container)
                outcome = await ProbeActions.http(secure: http.scheme == .https, host: http.host ?? context.podIP ?? "127.0.0.1", port: port,
                                                  path: http.path ?? "/", headers: http.httpHeaders ?? [], timeoutSeconds: left)
            } catch { return "\(error)" }
        } else if let sleep = handler.sleep {
            try? await Task.sleep(for: .seconds(min(max(0, sleep.seconds), left)))
            outcome = .success
        } else {
            outcome = .success   // tcpSocket hooks are accepted and do nothing, as in the kubelet
        }
        if case .failure(let message) = outcome { return message }
        return nil
    }

    static func isRunning(_ runtime: any PodRuntime, _ id: String) -> Bool {
        guard let state = try? runtime.state(id: id) else { return false }
        return state.status == .running || state.status == .created
    }

    /// "SIGTERM", "TERM", "15", "SIGRTMIN+3"; unknown names fall back to SIGTERM.
    public static func signalNumber(_ name: String?) -> Int32 {
        guard var text = name?.uppercased(), !text.isEmpty else { return SIGTERM }
        if let number = Int32(text), number > 0, number < 65 { return number }
        if text.hasPrefix("SIG") { text.removeFirst(3) }
        let names: [String: Int32] = [
            "HUP": SIGHUP, "INT": SIGINT, "QUIT": SIGQUIT, "KILL": SIGKILL, "USR1": SIGUSR1, "USR2": SIGUSR2, "TERM": SIGTERM,
            "PWR": SIGPWR, "WINCH": SIGWINCH, "STOP": SIGSTOP, "CONT": SIGCONT, "ABRT": SIGABRT, "ALRM": SIGALRM,
        ]
        if let number = names[text] { return number }
        // The image says which; only SIGRTMIN+0…+30 exist (an offset past them used to trap).
        if text.hasPrefix("RTMIN+"), let offset = Int32(text.dropFirst(6)), (0...30).contains(offset) { return 34 + offset }
        if text == "RTMIN" { return 34 }
        return SIGTERM
    }
}
