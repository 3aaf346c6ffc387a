import HTTPClientCore
import KubeModel
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import OCI
import Runtime
import SystemSupport

/// The probe actions, as the kubelet performs them: `exec` runs a command inside the container
/// (exit status 0 passes); from the node, `tcpSocket` opens a connection and `httpGet` sends a GET
/// (HTTPS without certificate verification) that passes on a status from 200 to 399. Each try is
/// bounded by the probe's timeout.
public enum ProbeActions {
    public enum Outcome: Sendable, Hashable {
        case success
        case failure(String)
    }

    /// A port by number, or by the name of one of the container's ports.
    public static func port(_ value: IntOrString, in container: Container) throws(PodSetupError) -> Int {
        switch value {
        case .int(let number):
            guard (1...65535).contains(number) else { throw PodSetupError("container \(container.name): probe port \(number) is out of range") }
            return Int(number)
        case .string(let name):
            if let number = Int(name), (1...65535).contains(number) { return number }
            guard let port = container.ports?.first(where: { $0.name == name }) else {
                throw PodSetupError("container \(container.name): probe port \"\(name)\" names none of its ports")
            }
            return Int(port.containerPort)
        }
    }

    /// One try of `probe` against a container run, bounded by `timeoutSeconds`.
    static func perform(_ probe: Probe, on target: ProbeTarget, runtime: any PodRuntime, timeoutSeconds: Int64) async -> Outcome {
        if let action = probe.exec {
            guard let context = target.exec else { return .failure("exec probe: the container's environment is not known") }
            return await exec(runtime, id: target.containerID, command: action.command ?? [], env: context.env, user: context.user, timeoutSeconds: timeoutSeconds)
        }
        do {
            if let action = probe.httpGet {
                let port = try port(action.port, in: target.container)
                return await http(secure: action.scheme == .https, host: action.host ?? target.address, port: port, path: action.path ?? "/",
                                  headers: action.httpHeaders ?? [], timeoutSeconds: timeoutSeconds)
            }
            if let action = probe.tcpSocket {
                return await tcp(host: action.host ?? target.address, port: try port(action.port, in: target.container), timeoutSeconds: timeoutSeconds)
            }
        } catch {
            return .failure("\(error)")
        }
        if let action = probe.grpc {
            return await GRPCHealthProbe.check(host: target.address, port: Int(action.port), service: action.service ?? "", timeoutSeconds: timeoutSeconds)
        }
        return .failure("the probe has no handler")
    }

    /// `command` in container `id` with the container's environment and user. The command runs
    /// on a thread of its own (a container decides how long it takes: it must not hold a thread
    /// others need), and a cancelled caller ends it at once with everything it started.
    public static func exec(
        _ runtime: any PodRuntime, id: String, command: [String], env: [String], user: RuntimeSpec.User, timeoutSeconds: Int64
    ) async -> Outcome {
        guard !command.isEmpty else { return .failure("exec probe: no command") }
        var process = RuntimeSpec.Process(args: command, user: user)
        process.env = env
        let stop = CancellationFlag()
        let ran = await withTaskCancellationHandler {
            await DedicatedThread.run { [process] () -> Result<CapturedProcess.Outcome, RuntimeError> in
                Result { () throws(RuntimeError) in
                    try runtime.execCapturing(id: id, process: process, timeoutSeconds: Double(timeoutSeconds), cancelled: { stop.isSet })
                }
            }
        } onCancel: {
            stop.set()
        }
        let outcome: CapturedProcess.Outcome
        switch ran {
        case .success(let value): outcome = value
        case .failure(let error): return .failure("exec probe: \(error)")
        }
        if stop.isSet { return .failure("command \(command) was stopped") }
        if outcome.timedOut { return .failure("command \(command) timed out after \(timeoutSeconds)s") }
        if outcome.status == 0 { return .success }
        // The kubelet keeps the start of the output for the event.
        let output = String((outcome.output + outcome.errorOutput).trimmedText.prefix(1024))
        return .failure("command \(command) exited with \(outcome.status)" + (output.isEmpty ? "" : ": \(output)"))
    }

    public static func tcp(host: String, port: Int, timeoutSeconds: Int64) async -> Outcome {
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(timeoutSeconds))
                .connect(host: host, port: port).get()
            try? await channel.close()
            return .success
        } catch {
            return .failure("dial tcp \(host):\(port): \(error)")
        }
    }

    /// One TLS context for every HTTPS probe (made once: probes run every few seconds per container).
    static let unverifiedTLS: NIOSSLContext? = {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        return try? NIOSSLContext(configuration: configuration)
    }()

    /// The kubelet's version string in the User-Agent (`kube-probe/<major>.<minor>`).
    static let userAgent = "kube-probe/1.31"

    public static func http(
        secure: Bool, host: String, port: Int, path: String, headers: [HTTPHeader] = [], timeoutSeconds: Int64
    ) async -> Outcome {
        let target = "\(secure ? "https" : "http")://\(host):\(port)\(path.hasPrefix("/") ? path : "/" + path)"
        do {
            let context: NIOSSLContext?
            if secure {
                guard let shared = unverifiedTLS else { return .failure("Get \"\(target)\": no TLS context") }
                context = shared
            } else {
                context = nil
            }
            let status = try await withThrowingTaskGroup(of: Int.self) { group in
                group.addTask {
                    let connection = try await HTTPClientConnection.connect(host: host, port: port, tls: context, connectTimeout: .seconds(timeoutSeconds)).channel
                    var requestHeaders = HTTPHeaders()
                    requestHeaders.add(name: "Host", value: port == (secure ? 443 : 80) ? host : "\(host):\(port)")
                    requestHeaders.add(name: "User-Agent", value: userAgent)
                    requestHeaders.add(name: "Accept", value: "*/*")
                    requestHeaders.add(name: "Connection", value: "close")
                    for header in headers {
                        requestHeaders.remove(name: header.name)
                        requestHeaders.add(name: header.name, value: header.value)
                    }
                    let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path.hasPrefix("/") ? path : "/" + path, headers: requestHeaders)
                    return try await connection.executeThenClose { inbound, outbound in
                        try await HTTPClientConnection.write([.head(head), .end(nil)], to: outbound, reasonFrom: inbound)
                        for try await part in inbound {
                            if case .head(let response) = part { return Int(response.status.code) }
                        }
                        throw PodSetupError("the connection closed without a response")
                    }
                }
                group.addTask {
                    try await Task.sleep(for: .seconds(timeoutSeconds))
                    throw PodSetupError("timeout after \(timeoutSeconds)s")
                }
                defer { group.cancelAll() }
                return try await group.next()!
            }
            return (200..<400).contains(status) ? .success : .failure("HTTP probe failed with statuscode: \(status)")
        } catch {
            return .failure("Get \"\(target)\": \(error)")
        }
    }
}
