import HTTPClientCore
import KubeModel
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization
import SystemSupport

/// HTTPS over SwiftNIO: TLS with the configured CA and client certificate, a request with a
/// body, and the response as a whole (on kept-alive connections, see ``ConnectionPool``) or as
/// a stream of lines (a watch, on a connection of its own).
struct HTTPSTransport: Sendable {
    let host: String
    let port: Int
    let tls: NIOSSLContext
    let serverHostname: String?
    let serverCertificateCheck: (@Sendable ([UInt8]) -> String?)?
    let bearerToken: String?
    let dialer: StreamDialer?
    /// Connecting and answering a non-streaming request must take less than this.
    let timeout: TimeAmount
    /// Shared by the copies of this transport (a client's copies share its connections).
    let pool = ConnectionPool()

    init(configuration: ClientConfiguration, timeout: TimeAmount = .seconds(30)) throws(KubeClientError) {
        (host, port) = try configuration.endpoint()
        self.timeout = timeout
        bearerToken = configuration.bearerToken
        serverCertificateCheck = configuration.serverCertificateCheck
        dialer = configuration.dialer
        tls = try configuration.tlsContext()
        serverHostname = HTTPClientConnection.serverName(for: host)
    }

    typealias Connection = HTTPClientConnection.Channel

    private func connect() async throws(KubeClientError) -> Connection {
        let check = serverCertificateCheck
        do {
            return try await HTTPClientConnection.connect(host: host, port: port, tls: tls, connectTimeout: timeout, dialer: dialer, closeOnError: true) { pipeline in
                if let check { try pipeline.addHandler(ServerCertificateCheck(check: check)) }
            }.channel
        } catch {
            throw .transport("connect to \(host):\(port): \(error)")
        }
    }

    private static func write(
        _ parts: [HTTPClientRequestPart], to outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>,
        reasonFrom inbound: NIOAsyncChannelInboundStream<HTTPClientResponsePart>
    ) async throws {
        try await HTTPClientConnection.write(parts, to: outbound, reasonFrom: inbound)
    }

    private func head(_ method: HTTPMethod, _ path: String, contentType: String?, bodyLength: Int) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: serverHostname.map { "\($0):\(port)" } ?? "\(host):\(port)")
        headers.add(name: "Accept", value: "application/json")
        headers.add(name: "User-Agent", value: "iotkube/\(IotkubeVersion.current)")
        headers.add(name: "Content-Length", value: String(bodyLength))
        if let contentType { headers.add(name: "Content-Type", value: contentType) }
        if let bearerToken { headers.add(name: "Authorization", value: "Bearer \(bearerToken)") }
        return HTTPRequestHead(version: .http1_1, method: method, uri: path, headers: headers)
    }

    /// Sends a request and returns the status code and the whole body. A request the server
    /// cannot have acted on (the connection failed before all of it was written, or a GET
    /// that got no answer) is tried once more, on a new connection: a kept one may have been
    /// closed by the server meanwhile. Anything else is never sent twice.
    func send(_ method: HTTPMethod, _ path: String, body: [UInt8]? = nil, contentType: String? = nil) async throws(KubeClientError) -> (status: Int, body: [UInt8]) {
        let first: String
        var reused = false
        switch await sendOnce(method, path, body: body, contentType: contentType, reused: &reused) {
        case .success(let result): return result
        case .failure(.other(let error)): throw error
        case .failure(.unanswered(let message)): first = message
        }
        // A kept connection that died unanswered: the server restarted or dropped its idle
        // connections, so the others are as dead; tried again at once on a new connection.
        if reused { pool.closeAll() } else { try? await Task.sleep(for: .milliseconds(200)) }
        if Task.isCancelled { throw .transport("\(first) (cancelled)") }
        var fresh = true
        switch await sendOnce(method, path, body: body, contentType: contentType, reused: &fresh) {
        case .success(let result): return result
        case .failure(.other(let error)): throw error
        case .failure(.unanswered(let message)): throw .transport("\(first); tried again: \(message)")
        }
    }

    /// The failure of one attempt: `unanswered` when the server cannot have acted on it (safe to repeat).
    private enum AttemptError: Error {
        case unanswered(String)
        case other(KubeClientError)
    }

    /// One attempt. `reused` in: true to use a new connection; out: whether a kept one was used.
    private func sendOnce(_ method: HTTPMethod, _ path: String, body: [UInt8]?, contentType: String?, reused: inout Bool) async -> Result<(status: Int, body: [UInt8]), AttemptError> {
        let kept = reused ? nil : pool.checkOut()
        reused = kept != nil
        do {
            return .success(try await exchange(method, path, body: body, contentType: contentType, on: kept))
        } catch {
            // Answered, cancelled (the server may have it), or written in full and not a GET:
            // the server may have acted on it.
            if error.progress.answered || Task.isCancelled || (error.progress.written && method != .GET) { return .failure(.other(error.underlying)) }
            // What the server said is not in the message: strip the "cannot reach" prefix once.
            if case .transport(let message) = error.underlying { return .failure(.unanswered(message)) }
            return .failure(.unanswered(error.message))
        }
    }

    private struct ExchangeError: Error {
        var underlying: KubeClientError
        var progress: ExchangeProgress
        var message: String { underlying.description }
    }

    /// One exchange on `kept` or on a new connection, which goes back to the pool when the
    /// response allows it.
    private func exchange(_ method: HTTPMethod, _ path: String, body: [UInt8]?, contentType: String?, on kept: KeptAliveConnection?) async throws(ExchangeError) -> (status: Int, body: [UInt8]) {
        let progress = ExchangeProgress()
        let connection: KeptAliveConnection
        if let kept {
            connection = kept
        } else {
            do { connection = KeptAliveConnection.start(try await connect()) } catch { throw ExchangeError(underlying: error, progress: progress) }
        }
        let parts: [HTTPClientRequestPart] = [.head(head(method, path, contentType: contentType, bodyLength: body?.count ?? 0))]
            + (body.map { $0.isEmpty ? [] : [.body(.byteBuffer(ByteBuffer(bytes: $0)))] } ?? []) + [.end(nil)]
        do {
            let reply = try await withThrowingTaskGroup(of: KeptAliveConnection.Reply?.self) { group in
                // Cancelled (by the timeout below or the caller), it closes the connection.
                group.addTask { try await connection.exchange(parts, progress: progress) }
                group.addTask {
                    try await Task.sleep(for: .nanoseconds(timeout.nanoseconds))
                    return nil
                }
                defer { group.cancelAll() }
                guard let reply = try await group.next() ?? nil else {
                    // The exchange then fails with the closed connection. The server may have
                    // acted on it: not repeated.
                    connection.close()
                    progress.setAnswered()
                    throw KubeClientError.transport("no answer within \(timeout.nanoseconds / 1_000_000_000) s")
                }
                return reply
            }
            if reply.reusable { pool.checkIn(connection) } else { connection.close() }
            return (reply.status, reply.body)
        } catch let error as KubeClientError {
            connection.close()
            throw ExchangeError(underlying: error, progress: progress)
        } catch {
            connection.close()
            throw ExchangeError(underlying: .transport("\(method) \(path): \(error)"), progress: progress)
        }
    }

    /// Sends a GET and delivers the response body line by line (watch streams) until the
    /// server ends it or the task is cancelled. Returns the status; a non-200 body is returned
    /// whole in `errorBody`.
    func stream(_ path: String, keepEmptyLines: Bool = false, onLine: @Sendable ([UInt8]) async throws -> Void) async throws(KubeClientError) -> (status: Int, errorBody: [UInt8]) {
        let connection = try await connect()
        do {
            return try await withTaskCancellationHandler {
                try await connection.executeThenClose { inbound, outbound in
                    try await Self.write([.head(head(.GET, path, contentType: nil, bodyLength: 0)), .end(nil)], to: outbound, reasonFrom: inbound)
                    var status = 0
                    var pending: [UInt8] = []
                    for try await part in inbound {
                        switch part {
                        case .head(let responseHead): status = Int(responseHead.status.code)
                        case .body(var buffer):
                            pending.append(contentsOf: buffer.readBytes(length: buffer.readableBytes) ?? [])
                            guard status == 200 else { continue }
                            while let newline = pending.firstIndex(of: 0x0A) {
                                let line = Array(pending[..<newline])
                                pending.removeSubrange(...newline)
                                if keepEmptyLines || !line.isEmpty { try await onLine(line) }
                            }
                        case .end:
                            if status == 200, !pending.isEmpty { try await onLine(pending) }
                            return (status, status == 200 ? [] : pending)
                        }
                    }
                    return (status, [])
                }
            } onCancel: {
                connection.channel.close(promise: nil)
            }
        } catch let error as KubeClientError {
            throw error
        } catch {
            throw .transport("watch \(path): \(error)")
        }
    }
}

extension ClientConfiguration {
    /// The TLS client context: the configured CA as the only trust root, the client
    /// certificate when one is set.
    public func tlsContext() throws(KubeClientError) -> NIOSSLContext {
        var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
        do {
            if let ca = certificateAuthorityPEM {
                tlsConfiguration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(ca))
            }
            if let certificate = clientCertificatePEM, let key = clientKeyPEM {
                tlsConfiguration.certificateChain = try NIOSSLCertificate.fromPEMBytes(certificate).map { .certificate($0) }
                tlsConfiguration.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: key, format: .pem))
            }
            if insecureSkipVerify { tlsConfiguration.certificateVerification = .none }
            if dialer != nil, !insecureSkipVerify {
                guard serverCertificateCheck != nil else {
                    throw KubeClientError.configuration("a dialed connection needs a server certificate check (it has no address to verify)")
                }
                tlsConfiguration.certificateVerification = .noHostnameVerification
            }
            return try NIOSSLContext(configuration: tlsConfiguration)
        } catch {
            throw .configuration("TLS setup failed: \(error)")
        }
    }

    /// The host and port of `server`.
    public func hostAndPort() throws(KubeClientError) -> (host: String, port: Int) { try endpoint() }
}
