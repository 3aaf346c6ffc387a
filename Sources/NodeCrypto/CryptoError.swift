import CNodeCrypto

/// A failed cryptographic step; names the step and BoringSSL's reason when it gave one.
public struct CryptoError: Error, CustomStringConvertible, Sendable {
    public let description: String

    init(_ step: String) {
        var reason = [CChar](repeating: 0, count: 256)
        iotkube_crypto_last_error(&reason, reason.count)
        let text = String(decoding: reason.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        description = text.isEmpty ? step : "\(step): \(text)"
    }
}
