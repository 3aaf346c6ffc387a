import CRuntime
import FoundationEssentials
import HTTPServing
import KubeModel
import Runtime
import SystemSupport

/// The agent's HTTPS endpoint (the kubelet's port 10250): `/healthz`, `/metrics/resource` and
/// `/metrics` (Prometheus text) and `/stats/summary` (JSON) for a cluster's metrics-server,
/// `/containerLogs`, `/exec` and `/portForward` for the API server. Everything but `/healthz` needs a client
/// certificate signed by the cluster CA.
public struct AgentEndpoint: HTTPRequestHandler {
    let nodeName: String
    let host: HostReader
    let counters: HeartbeatCounters
    /// Container logs for `kubectl logs` (through the API server).
    let logs: ContainerLogReader?
    /// The runtime `kubectl exec` runs commands with.
    let runtime: (any PodRuntime)?
    /// The pod cgroups, whose usage the pods' metrics lines report (nil: containers summed).
    let cgroups: PodCgroups?
    /// The UID of the pod this node runs under a namespace and name now (nil: none).
    let currentPodUID: (@Sendable (String, String) -> String?)?
    /// When the agent started (the summary's `startTime`).
    let started = Timestamp.now()
    /// Exec, attach and port-forward streams that pass no data this long are closed (nil: never).
    let streamIdleTimeout: Duration?

    public init(
        nodeName: String, host: HostReader = HostReader(), counters: HeartbeatCounters, logs: ContainerLogReader? = nil, runtime: (any PodRuntime)? = nil,
        currentPodUID: (@Sendable (String, String) -> String?)? = nil, streamIdleTimeout: Duration? = .seconds(4 * 3600), cgroups: PodCgroups? = nil
    ) {
        self.cgroups = cgroups
        self.currentPodUID = currentPodUID
        self.streamIdleTimeout = streamIdleTimeout
        self.nodeName = nodeName
        self.host = host
        self.counters = counters
        self.logs = logs
        self.runtime = runtime
    }

    public func handle(_ request: HTTPRequest) async -> HTTPResponse {
        if request.path == "/healthz" { return .text(200, "ok") }
        guard request.clientCertificate != nil else {
            return .json(401, APIHTTPServer.statusBytes(Status(code: 401, reason: "Unauthorized", message: "a client certificate from the cluster CA is required")))
        }
        if request.path.hasPrefix("/exec/") || request.path.hasPrefix("/attach/") { return exec(request) }
        if request.path.hasPrefix("/portForward/") { return portForward(request) }
        guard request.method == "GET" else {
            return .json(405, APIHTTPServer.statusBytes(Status(code: 405, reason: "MethodNotAllowed", message: "only GET is served")))
        }
        let now = Timestamp.now()
        if request.path.hasPrefix("/containerLogs/") { return containerLogs(request) }
        switch request.path {
        case "/metrics/resource": return prometheus(resourceMetrics(now: now))
        case "/metrics": return prometheus(agentMetrics())
        case "/stats/summary":
            return .json(200, KubeJSON.serialize(summary(now: now), pretty: true))
        default:
            return .json(404, APIHTTPServer.statusBytes(Status(code: 404, reason: "NotFound", message: "\(request.path) is not served by this agent")))
        }
    }

    /// `/containerLogs/<namespace>/<pod>/<container>`: only for the API server's kubelet client
    /// (a cluster administrator's certificate), not for other nodes.
    func containerLogs(_ request: HTTPRequest) -> HTTPResponse {
        let failure = Self.refusal
        guard request.clientCertificate?.groups.contains("system:masters") == true else {
            return failure(403, "container logs are served to the API server only")
        }
        guard let logs else { return failure(404, "this agent serves no container logs") }
        let parts = request.path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        guard parts.count == 4 else { return failure(404, "use /containerLogs/<namespace>/<pod>/<container>") }
        do throws(ContainerLogReader.LogError) {
            let query = try ContainerLogReader.Request(namespace: parts[1], pod: parts[2], container: parts[3], query: request.query)
            let file = try logs.file(for: query)
            let headers = [("Content-Type", "text/plain; charset=utf-8")]
            if query.follow {
                return HTTPResponse(status: 200, headers: headers, body: .stream { writer in
                    try await logs.follow(query, file: file) { bytes in try await writer.write(bytes) }
                })
            }
            return HTTPResponse(status: 200, headers: headers, body: .bytes(logs.read(query, file: file)))
        } catch {
            return failure(error.status, error.description)
        }
    }

    /// `/exec/<namespace>/<pod>/<container>`: a command in a running container over a WebSocket
    /// or SPDY (see ``ExecSession``); `/attach/...` the same for the container's own process
    /// (``AttachSession``). For the API server only, as logs are.
    func exec(_ request: HTTPRequest) -> HTTPResponse {
        let failure = Self.refusal
        guard request.clientCertificate?.groups.contains("system:masters") == true else {
            return failure(403, "exec is served to the API server only")
        }
        guard request.method == "GET" || request.method == "POST" else { return failure(405, "exec is a GET or POST with an upgrade") }
        guard let runtime else { return failure(404, "this agent runs no containers") }
        let exec: RemoteCommandRequest
        do throws(RemoteCommandRequest.Refusal) { exec = try RemoteCommandRequest(request) } catch { return failure(error.status, error.message) }
        let uid = currentPodUID?(exec.namespace, exec.pod)
        if currentPodUID != nil, uid == nil { return failure(404, "pod \"\(exec.namespace)/\(exec.pod)\" does not run on this node") }
        let running = runtime.list().first { state in
            let annotations = state.annotations ?? [:]
            return state.status == .running && annotations["io.kubernetes.pod.namespace"] == exec.namespace
                && annotations["io.kubernetes.pod.name"] == exec.pod && annotations["io.kubernetes.container.name"] == exec.container
                && (uid == nil || annotations["io.kubernetes.pod.uid"] == uid)
        }
        guard let running else {
            return failure(404, "container \"\(exec.container)\" in pod \"\(exec.namespace)/\(exec.pod)\" is not running on this node")
        }
        let session: any CommandSession
        if exec.command.isEmpty {
            // Attach: the container's own process, through its monitor's attach socket.
            session = AttachSession(stateDirectory: runtime.root + "/" + running.id, request: exec)
        } else {
            // The container's own process settings (user, capabilities, environment, working
            // directory, no_new_privs, rlimits); only the command and the terminal differ.
            guard var process = (try? runtime.spec(bundle: running.bundle))?.process else {
                return failure(404, "container \"\(exec.container)\" in pod \"\(exec.namespace)/\(exec.pod)\" has no configuration")
            }
            process.args = exec.command
            process.terminal = exec.tty
            session = ExecSession(runtime: runtime, containerID: running.id, process: process, request: exec)
        }
        if exec.spdy {
            let headers = [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"), ("X-Stream-Protocol-Version", exec.channelProtocol)]
            return HTTPResponse(status: 101, headers: headers, body: .upgrade { [idle] connection in
                idle(connection)
                // The client opens its streams first (the kubelet waits 30 s for them).
                let deadline = connection.closeAfter(.seconds(30))
                let channel: SPDYCommandChannel
                do {
                    let spdy = try SPDYSession(connection: connection)
                    channel = SPDYCommandChannel(session: spdy, streams: try await spdy.acceptStreams(exec.spdyStreams))
                } catch {
                    deadline.cancel()
                    connection.close()
                    return
                }
                deadline.cancel()
                await session.run(channel)
            })
        }
        let headers = [
            ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", WebSocketStream.acceptValue(forKey: request.headers["sec-websocket-key"] ?? "")),
            ("Sec-WebSocket-Protocol", exec.channelProtocol),
        ]
        return HTTPResponse(status: 101, headers: headers, body: .upgrade { [idle] connection in
            idle(connection)
            await session.run(WebSocketCommandChannel(socket: WebSocketStream(connection: connection, role: .server), request: exec))
        })
    }

    /// A refusal as a Kubernetes Status (404 NotFound, 403 Forbidden, 405 MethodNotAllowed, else BadRequest).
    static func refusal(_ code: Int, _ message: String) -> HTTPResponse {
        let reason = code == 404 ? "NotFound" : code == 403 ? "Forbidden" : code == 405 ? "MethodNotAllowed" : "BadRequest"
        return .json(code, APIHTTPServer.statusBytes(Status(code: Int32(code), reason: reason, message: message)))
    }

    /// Starts the idle timeout on an upgraded stream connection.
    var idle: @Sendable (ByteStreamConnection) -> Void {
        let timeout = streamIdleTimeout
        return { connection in
            guard let timeout else { return }
            let (seconds, attoseconds) = timeout.components
            connection.closeWhenIdle(for: .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000))
        }
    }

    private func prometheus(_ text: String) -> HTTPResponse {
        HTTPResponse(status: 200, headers: [("Content-Type", "text/plain; version=0.0.4; charset=utf-8")], body: .bytes(Array(text.utf8)))
    }

    /// The resource metrics metrics-server reads (node part; pods join with the runtime).
    func resourceMetrics(now: Timestamp) -> String {
        let milliseconds = now.seconds * 1000 + Int64(now.nanoseconds / 1_000_000)
        let memory = host.memory()
        var text = """
            # HELP node_cpu_usage_seconds_total Cumulative cpu time consumed by the node in core-seconds
            # TYPE node_cpu_usage_seconds_total counter

            """
        if let cpu = host.cpuTimes() {
            text += "node_cpu_usage_seconds_total \(Self.seconds(fromJiffies: cpu.busy)) \(milliseconds)\n"
        }
        text += """
            # HELP node_memory_working_set_bytes Current working set of the node in bytes
            # TYPE node_memory_working_set_bytes gauge
            node_memory_working_set_bytes \(memory.total - memory.available) \(milliseconds)
            # HELP scrape_error 1 if there was an error while getting container metrics, 0 otherwise
            # TYPE scrape_error gauge
            scrape_error 0

            """
        if let runtime {
            // A pod's figures are its pod cgroup's where it has one: exec'd processes and memory
            // charged to the pod count too.
            let cgroups = self.cgroups
            text += Self.containerMetrics(PodMetricsSampler(runtime: runtime).sample().values, milliseconds: milliseconds) { uid in
                guard let statistics = cgroups?.statistics(uid: uid), let cpu = statistics.cpuUsageMicroseconds,
                      let memory = statistics.memoryWorkingSetBytes ?? statistics.memoryBytes else { return nil }
                return (max(0, cpu), max(0, memory))
            }
        }
        return text
    }

    /// The containers' and pods' lines of `/metrics/resource`, as the kubelet writes them.
    static func containerMetrics(_ samples: some Sequence<PodMetricsSampler.ContainerSample>, milliseconds: Int64,
                                 podUsage: (String) -> (cpuMicroseconds: Int64, memoryBytes: Int64)? = { _ in nil }) -> String {
        func label(_ value: String) -> String {
            "\"" + value.replacingOccurrences("\\", "\\\\").replacingOccurrences("\"", "\\\"").replacingOccurrences("\n", "\\n") + "\""
        }
        func seconds(_ microseconds: Int64) -> String {
            let fraction = String(microseconds % 1_000_000)
            return "\(microseconds / 1_000_000).\(String(repeating: "0", count: 6 - fraction.count))\(fraction)"
        }
        let sorted = samples.sorted { ($0.namespace, $0.pod, $0.container) < ($1.namespace, $1.pod, $1.container) }
        var cpu = "# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds\n# TYPE container_cpu_usage_seconds_total counter\n"
        var memory = "# HELP container_memory_working_set_bytes [STABLE] Current working set of the container in bytes\n# TYPE container_memory_working_set_bytes gauge\n"
        var pods: [String: (namespace: String, pod: String, cpu: Int64, memory: Int64, uid: String)] = [:]
        for sample in sorted {
            let labels = "{container=\(label(sample.container)),namespace=\(label(sample.namespace)),pod=\(label(sample.pod))}"
            cpu += "container_cpu_usage_seconds_total\(labels) \(seconds(sample.cpuMicroseconds)) \(milliseconds)\n"
            memory += "container_memory_working_set_bytes\(labels) \(sample.memoryWorkingSetBytes) \(milliseconds)\n"
            var pod = pods[sample.namespace + "/" + sample.pod] ?? (sample.namespace, sample.pod, 0, 0, sample.podUID)
            pod.cpu = pod.cpu.addingReportingOverflow(sample.cpuMicroseconds).overflow ? Int64.max : pod.cpu + sample.cpuMicroseconds
            pod.memory = pod.memory.addingReportingOverflow(sample.memoryWorkingSetBytes).overflow ? Int64.max : pod.memory + sample.memoryWorkingSetBytes
            pods[sample.namespace + "/" + sample.pod] = pod
        }
        var podCPU = "# HELP pod_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the pod in core-seconds\n# TYPE pod_cpu_usage_seconds_total counter\n"
        var podMemory = "# HELP pod_memory_working_set_bytes [STABLE] Current working set of the pod in bytes\n# TYPE pod_memory_working_set_bytes gauge\n"
        for var pod in pods.values.sorted(by: { ($0.namespace, $0.pod) < ($1.namespace, $1.pod) }) {
            if !pod.uid.isEmpty, let usage = podUsage(pod.uid) { (pod.cpu, pod.memory) = (usage.cpuMicroseconds, usage.memoryBytes) }
            let labels = "{namespace=\(label(pod.namespace)),pod=\(label(pod.pod))}"
            podCPU += "pod_cpu_usage_seconds_total\(labels) \(seconds(pod.cpu)) \(milliseconds)\n"
            podMemory += "pod_memory_working_set_bytes\(labels) \(pod.memory) \(milliseconds)\n"
        }
        return cpu + memory + podCPU + podMemory
    }

    /// The agent's own counters.
    func agentMetrics() -> String {
        let snapshot = counters.snapshot()
        var text = """
            # HELP iotkube_agent_heartbeats_total Heartbeats that reached the API server
            # TYPE iotkube_agent_heartbeats_total counter
            iotkube_agent_heartbeats_total \(snapshot.beats)
            # HELP iotkube_agent_heartbeat_failures_total Heartbeats that failed
            # TYPE iotkube_agent_heartbeat_failures_total counter
            iotkube_agent_heartbeat_failures_total \(snapshot.failures)

            """
        if let temperature = host.temperature() {
            text += "# HELP iotkube_node_temperature_celsius SoC temperature\n# TYPE iotkube_node_temperature_celsius gauge\n"
            text += "iotkube_node_temperature_celsius \(temperature)\n"
        }
        if let pressure = host.memoryPressure() {
            text += "# HELP iotkube_node_memory_pressure_seconds_total Time tasks were stalled on memory (PSI; some: at least one, full: all)\n"
            text += "# TYPE iotkube_node_memory_pressure_seconds_total counter\n"
            text += "iotkube_node_memory_pressure_seconds_total{kind=\"some\"} \(Self.seconds(fromMicroseconds: pressure.some.totalMicroseconds))\n"
            text += "iotkube_node_memory_pressure_seconds_total{kind=\"full\"} \(Self.seconds(fromMicroseconds: pressure.full.totalMicroseconds))\n"
        }
        if let load = host.loadAverage() {
            text += "# HELP iotkube_node_load1 1-minute load average\n# TYPE iotkube_node_load1 gauge\niotkube_node_load1 \(load)\n"
        }
        return text
    }

    /// The kubelet's `/stats/summary` shape (node part).
    func summary(now: Timestamp) -> JSONValue {
        let memory = host.memory()
        var node: JSONValue = [
            "nodeName": .string(nodeName), "startTime": .string(started.description),
            "memory": [
                "time": .string(now.description), "availableBytes": .integer(memory.available), "usageBytes": .integer(memory.total - memory.available),
                "workingSetBytes": .integer(memory.total - memory.available),
            ],
        ]
        if let pressure = host.memoryPressure() {
            // The kubelet's Summary API PSI (KubeletPSI): stall totals and averages.
            func line(_ line: PressureStall.Line) -> JSONValue {
                ["total": .integer(line.totalMicroseconds), "avg10": .number(String(line.avg10)), "avg60": .number(String(line.avg60)), "avg300": .number(String(line.avg300))]
            }
            node.set(["memory", "psi"], ["full": line(pressure.full), "some": line(pressure.some)])
        }
        if let cpu = host.cpuTimes() {
            node.set(["cpu"], ["time": .string(now.description), "usageCoreNanoSeconds": .integer(Self.nanoseconds(fromJiffies: cpu.busy))])
        }
        if let filesystem = host.filesystem("/") {
            node.set(["fs"], [
                "time": .string(now.description), "availableBytes": .integer(filesystem.available), "capacityBytes": .integer(filesystem.total),
                "usedBytes": .integer(filesystem.total - filesystem.available),
            ])
        }
        return ["node": node, "pods": []]
    }

    /// /proc/stat counts in USER_HZ, 100 per second on Linux.
    static func seconds(fromJiffies jiffies: UInt64) -> String {
        let whole = jiffies / 100
        let fraction = jiffies % 100
        return "\(whole).\(fraction < 10 ? "0" : "")\(fraction)"
    }

    static func nanoseconds(fromJiffies jiffies: UInt64) -> Int64 { Int64(clamping: jiffies) * 10_000_000 }

    /// Microseconds as decimal seconds ("12.345678").
    static func seconds(fromMicroseconds value: Int64) -> String {
        let micro = max(0, value)
        let fraction = String(micro % 1_000_000)
        return "\(micro / 1_000_000).\(String(repeating: "0", count: 6 - fraction.count))\(fraction)"
    }
}

extension String {
    /// Every `target` replaced by `replacement` (FoundationEssentials has no such method).
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
