import Foundation

/// A helper process (a registry, a proxy) for the length of the test run. A shell watchdog
/// kills it when the test process goes away, so nothing outlives `swift test`.
public final class BackgroundProcess: @unchecked Sendable {
    public let process: SpawnedProcess
    public let logPath: String

    /// Starts `executable arguments…`; its output goes to `logPath` unless `captureFirstLine`
    /// (then the first line of stdout is returned by `firstLine`).
    public init(_ executable: String, _ arguments: [String], logPath: String, captureFirstLine: Bool = false) throws {
        self.logPath = logPath
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let quoted = ([executable] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let script = """
            \(quoted) \(captureFirstLine ? "" : ">>'\(logPath)'") 2>>'\(logPath)' &
            child=$!
            echo $child > '\(logPath).pid'
            trap 'kill $child 2>/dev/null' EXIT
            trap 'exit 143' TERM
            while kill -0 \(getpid()) 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 0.5; done
            """
        process = try SpawnedProcess("/bin/sh", ["-c", script], output: captureFirstLine ? .pipe : .null)
    }

    /// The first line the process printed (e.g. the port it listens on).
    public func firstLine() -> String {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let count = read(process.outputDescriptor, &byte, 1)
            if count < 0 && errno == EINTR { continue }
            guard count == 1, byte != 0x0A else { break }
            bytes.append(byte)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Kills the helper (its pid is in `<logPath>.pid`: signals may reach the watchdog shell
    /// ignored, so it is not relied on), then the watchdog.
    public func stop() {
        guard process.isRunning else { return }
        if let text = try? String(contentsOfFile: logPath + ".pid", encoding: .utf8),
           let child = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
            kill(child, SIGKILL)
        }
        for _ in 0..<60 where process.isRunning { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// Waits until `url` answers any HTTP status (plain GET with curl), up to `seconds`.
public func waitForHTTP(_ url: String, seconds: Double = 20) throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if let result = try? ServerProcess.run("/usr/bin/curl", ["-s", "-k", "-o", "/dev/null", "-w", "%{http_code}", url], timeout: 5),
           result.output != "000" { return }
        Thread.sleep(forTimeInterval: 0.1)
    }
    throw TestFailure("\(url) did not answer within \(seconds) s")
}
