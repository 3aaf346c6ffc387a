import CNodeCrypto

/// A failed cryptographic step; names the step and BoringSSL's reason when it gave one.
public struct CryptoError: Error, CustomStringConvertible, Sendable {
    public let description: String

    /// `step` with BoringSSL's reason for the failure of the call just made on this thread.
    init(_ step: String) {
        var reason = [CChar](repeating: 0, count: 256)
        iotkube_crypto_last_error(&reason, reason.count)
        let text = String(decoding: reason.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        description = text.isEmpty ? step : "\(step): \(text)"
    }

    /// A refusal that is not BoringSSL's (the input was rejected before any call).
    init(refusing problem: String) {
        description = problem
    }
}
