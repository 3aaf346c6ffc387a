import Foundation
import KubeModel
import IotkubeTestSupport
import Testing

@testable import KubeClient

/// The API client's kept-alive connections against a TLS server that misbehaves on purpose:
/// it drops each connection after reading the request, or never answers.
@Suite(.ownThread) struct KeptAliveConnectionTests {
    /// A TLS server (Python's ssl) that logs each request's method and then closes the
    /// connection without an answer (`drop`) or keeps it open without one (`silent`).
    final class MisbehavingServer: Sendable {
        let directory: String
        let process: BackgroundProcess
        let port: Int

        init(_ mode: String) throws {
            directory = NSTemporaryDirectory() + "iotkube-misbehaving-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let made = try ServerProcess.run("/usr/bin/openssl", [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", directory + "/key.pem", "-out", directory + "/cert.pem", "-days", "1", "-subj", "/CN=127.0.0.1",
            ])
            guard made.status == 0 else { throw TestFailure("openssl: \(made.output)") }
            let script = """
                import socket, ssl, sys
                directory, mode = sys.argv[1], sys.argv[2]
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(directory + "/cert.pem", directory + "/key.pem")
                listener = socket.socket()
                listener.bind(("127.0.0.1", 0))
                listener.listen(16)
                print(listener.getsockname()[1], flush=True)
                held = []
                while True:
                    connection, _ = listener.accept()
                    try:
                        tls = context.wrap_socket(connection, server_side=True)
                        data = b""
                        while b"\\r\\n\\r\\n" not in data:
                            chunk = tls.recv(65536)
                            if not chunk:
                                break
                            data += chunk
                        head, _, body = data.partition(b"\\r\\n\\r\\n")
                        length = 0
                        for line in head.split(b"\\r\\n")[1:]:
                            name, _, value = line.partition(b":")
                            if name.strip().lower() == b"content-length":
                                length = int(value)
                        while len(body) < length:
                            chunk = tls.recv(65536)
                            if not chunk:
                                break
                            body += chunk
                        if head:
                            with open(directory + "/requests", "a") as log:
                                log.write(head.split(b" ")[0].decode() + "\\n")
                        if mode == "silent":
                            held.append(tls)
                        else:
                            tls.close()
                    except Exception:
                        connection.close()
                """
            try script.write(toFile: directory + "/server.py", atomically: true, encoding: .utf8)
            process = try BackgroundProcess("/usr/bin/python3", [directory + "/server.py", directory, mode], logPath: directory + "/log", captureFirstLine: true)
            guard let port = Int(process.firstLine()) else { throw TestFailure("the server did not start: \(process.log)") }
            self.port = port
        }

        /// The methods of the requests it read, in order.
        var requests: [String] {
            ((try? String(contentsOfFile: directory + "/requests", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }

        var client: KubeAPIClient {
            get throws {
                var configuration = ClientConfiguration(server: "https://127.0.0.1:\(port)")
                configuration.insecureSkipVerify = true
                return try KubeAPIClient(configuration: configuration)
            }
        }

        deinit {
            process.stop()
            try? FileManager.default.removeItem(atPath: directory)
        }
    }

    /// A request written in full may have been acted on: only a GET is tried again.
    @Test func aRequestTheServerMayHaveActedOnIsNeverSentTwice() async throws {
        let server = try MisbehavingServer("drop")
        let client = try server.client
        await #expect(throws: KubeClientError.self) {
            _ = try await client.create(ConfigMap(metadata: ObjectMeta(name: "once", namespace: "default"), data: ["a": "b"]))
        }
        #expect(server.requests == ["POST"], "a create the server read is not sent again")
        await #expect(throws: KubeClientError.self) {
            _ = try await client.mergePatch(ConfigMap.self, namespace: "default", name: "once", patch: ["data": ["a": "c"]])
        }
        #expect(server.requests == ["POST", "PATCH"])
        await #expect(throws: KubeClientError.self) { _ = try await client.get(Namespace.self, name: "default") }
        #expect(server.requests == ["POST", "PATCH", "GET", "GET"], "a read is tried once more")
    }

    /// A caller that gives up (a pod worker cancelled, the agent stopping) does not wait for a
    /// server that never answers, and its request is not sent again.
    @Test func aCancelledRequestDoesNotWaitForASilentServer() async throws {
        let server = try MisbehavingServer("silent")
        let client = try server.client
        let request = Task { try await client.get(Namespace.self, name: "default") }
        for _ in 0..<400 where server.requests.isEmpty { try await Task.sleep(for: .milliseconds(50)) }
        #expect(server.requests == ["GET"])
        let cancelled = ContinuousClock.now
        request.cancel()
        let result = await request.result
        guard case .failure = result else {
            Issue.record("a request to a silent server succeeded")
            return
        }
        // The client's own limit is 30 s: well before it, the cancelled request is over.
        #expect(ContinuousClock.now - cancelled < .seconds(20), "the cancelled request waited \(ContinuousClock.now - cancelled)")
        try await Task.sleep(for: .milliseconds(300))
        #expect(server.requests == ["GET"], "a cancelled request is not tried again")
        #expect(client.transport.pool.idleCount == 0)
    }
}
