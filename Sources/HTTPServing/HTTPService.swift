import Logging
import ServiceLifecycle

/// Runs an ``APIHTTPServer`` as a service: stops listening on graceful shutdown.
public struct HTTPService: Service {
    let server: APIHTTPServer
    let host: String
    let port: Int
    let bindRetrySeconds: Int
    let onListening: @Sendable (Int) -> Void

    /// `bindRetrySeconds`: how long a port in use is tried again (see ``APIHTTPServer/run(host:port:bindRetrySeconds:onListening:)``).
    public init(server: APIHTTPServer, host: String, port: Int, bindRetrySeconds: Int = 30, onListening: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.server = server
        self.host = host
        self.port = port
        self.bindRetrySeconds = bindRetrySeconds
        self.onListening = onListening
    }

    public func run() async throws {
        do {
            try await cancelWhenGracefulShutdown {
                try await server.run(host: host, port: port, bindRetrySeconds: bindRetrySeconds, onListening: onListening)
            }
        } catch is CancellationError {
            // Stopping on SIGTERM is a clean exit, not an error.
        }
    }
}
