import NIOCore
import NIOSSL
import NIOTLS

/// Refuses a server whose certificate fails a caller's check, once the TLS handshake has
/// verified the chain and before the request goes out (the check sees the leaf in DER). Used by
/// the API client and by the API server's streams to the agents.
public final class ServerCertificateCheck: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = NIOAny

    let check: @Sendable ([UInt8]) -> String?

    public init(check: @escaping @Sendable ([UInt8]) -> String?) { self.check = check }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted? = event as? TLSUserEvent {
            let handler = try? context.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self)
            let refusal: String?
            if let der = try? handler?.peerCertificate?.toDERBytes() {
                refusal = check(der)
            } else {
                refusal = "the server presented no certificate"
            }
            if let refusal {
                context.fireErrorCaught(KubeClientError.transport("refused the server's certificate: \(refusal)"))
                context.close(promise: nil)
                return
            }
        }
        context.fireUserInboundEventTriggered(event)
    }
}
