import Foundation
import Synchronization

/// A real `iotkube-server` process on a loopback port with a fresh data directory, and helpers
/// to drive it with real kubectl.
public final class ServerProcess: @unchecked Sendable {
    public let directory: URL
    public let port: Int
    public private(set) var process: SpawnedProcess!
    public let log: URL
    private let extraArguments: [String]
    private let environment: [String: String]

    public static let buildDirectory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    public static var serverBinary: URL { buildDirectory.appendingPathComponent("iotkube-server") }

    public var kubeconfig: String { directory.appendingPathComponent("admin.kubeconfig").path }

    /// The address agents are told to reach the server at (`init --advertise-address`); the
    /// tests' own kubectl always goes to 127.0.0.1. A VM guest reaches the host as 10.0.2.2.
    public let advertiseAddress: String

    public init(arguments extraArguments: [String] = [], environment: [String: String] = [:], advertiseAddress: String = "127.0.0.1") throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("iotkube-server-\(UUID().uuidString)")
        port = try Self.freePort()
        self.advertiseAddress = advertiseAddress
        let initResult = try Self.run(Self.serverBinary.path, ["init", "--data-dir", directory.path, "--port", String(port), "--advertise-address", advertiseAddress])
        guard initResult.status == 0 else { throw TestFailure("init failed: \(initResult.output)") }
        log = directory.appendingPathComponent("server.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        self.extraArguments = extraArguments
        self.environment = environment
        try start()
    }

    private func start() throws {
        process = try SpawnedProcess(Self.serverBinary.path, ["run", "--data-dir", directory.path, "--listen", "127.0.0.1:\(port)"] + extraArguments,
                                     environment: environment, output: .file(log.path))
        try waitUntilServing()
    }

    /// Stops the server (SIGTERM) and starts it again on the same data directory.
    public func restart() throws {
        stop()
        try start()
    }

    /// Stops the server (SIGTERM); `resume` starts it again on the same port and data.
    public func stop() {
        guard process?.isRunning == true else { return }
        process.terminate()
        process.waitUntilExit()
    }

    /// Kills the server with SIGKILL (no shutdown at all), as a power cut or OOM kill would.
    public func kill() {
        guard process?.isRunning == true else { return }
        process.signal(SIGKILL)
        process.waitUntilExit()
    }

    public func resume() throws {
        guard process?.isRunning != true else { return }
        try start()
    }

    deinit {
        if process?.isRunning == true {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: directory)
    }

    private func waitUntilServing() throws {
        for _ in 0..<200 {
            if !process.isRunning { throw TestFailure("server exited: \(serverLog)") }
            if let (status, _) = try? kubectl(["get", "--raw", "/healthz"]), status == 0 { return }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw TestFailure("server did not start: \(serverLog)")
    }

    public var serverLog: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// Runs kubectl against this server; returns exit status and combined output.
    @discardableResult
    public func kubectl(_ arguments: [String], input: String? = nil) throws -> (status: Int32, output: String) {
        guard let kubectl = Self.kubectlPath else { throw TestFailure("kubectl is not installed") }
        let server = advertiseAddress == "127.0.0.1" ? [] : ["--server", "https://127.0.0.1:\(port)"]
        return try Self.run(kubectl, ["--kubeconfig", kubeconfig] + server + arguments, input: input)
    }

    public static var kubectlPath: String? { findExecutable("kubectl") }

    public static func findExecutable(_ name: String) -> String? {
        for directory in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs a command to completion; a command still running after `timeout` seconds is killed
    /// (and reported as such) so a hanging client cannot hang the test run.
    public static func run(_ executable: String, _ arguments: [String], input: String? = nil, timeout: TimeInterval = 60) throws -> (status: Int32, output: String) {
        let result = try ChildProcess.run(executable, arguments, input: Array((input ?? "").utf8), timeout: timeout)
        var text = String(decoding: result.output, as: UTF8.self)
        if result.timedOut {
            text += "\n[killed after \(Int(timeout)) s: \(arguments.joined(separator: " "))]"
        } else if result.signaled {
            text += "\n[ended by signal \(result.status): \(arguments.joined(separator: " "))]"
        }
        return (result.status, text)
    }

    /// A TCP port that was free a moment ago, below the kernel's ephemeral range: a port the
    /// kernel hands out itself can be taken as the source port of any outgoing connection (the
    /// tests make many) before the server binds it.
    public static func freePort() throws -> Int {
        let range = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))?
            .split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { Int($0) } ?? []
        let ephemeralStart = range.first ?? 32768
        if ephemeralStart > 11000 {
            for _ in 0..<100 {
                let candidate = Int.random(in: 10000..<ephemeralStart)
                // Tests that map fixed host ports keep theirs.
                if fixedTestPorts.contains(candidate) { continue }
                // Never the same port twice in one test run: a port handed out may not be bound
                // yet (a registry starting), and another test's pick must not take it.
                if bindable(candidate) != nil, handedOut.withLock({ $0.insert(candidate).inserted }) { return candidate }
            }
        }
        for _ in 0..<100 {
            if let port = bindable(0), handedOut.withLock({ $0.insert(port).inserted }) { return port }
        }
        throw TestFailure("no free port")
    }

    private static let handedOut = Mutex<Set<Int>>([])

    /// Host ports that tests use by number (`PodNetworkTests` maps 20000 + cycle for 100
    /// create/delete cycles): never handed out to another test's server or agent.
    public static let fixedTestPorts = 20_000..<20_200

    /// Binds (and releases) `port` on 127.0.0.1 (0: any); the port bound, nil when taken.
    private static func bindable(_ port: Int) -> Int? {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        return bound ? Int(UInt16(bigEndian: address.sin_port)) : nil
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Whether tests needing a tool run: always under CI (where a missing tool is a failure), else when present.
public func toolAvailable(_ name: String) -> Bool {
    ProcessInfo.processInfo.environment["CI"] != nil || ServerProcess.findExecutable(name) != nil
}
