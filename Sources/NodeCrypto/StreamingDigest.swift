import CNodeCrypto

/// SHA-1, SHA-256 or SHA-512 over bytes that arrive in pieces.
public struct StreamingDigest: Sendable {
    /// The hash functions the agent uses.
    public enum Algorithm: Sendable {
        case sha1, sha256, sha512

        var code: Int32 {
            switch self {
            case .sha1: IOTKUBE_DIGEST_SHA1
            case .sha256: IOTKUBE_DIGEST_SHA256
            case .sha512: IOTKUBE_DIGEST_SHA512
            }
        }
    }

    // A plain C struct holding the context by value: copies are independent digests.
    private var state = iotkube_digest()

    public init(_ algorithm: Algorithm) {
        _ = iotkube_digest_init(&state, algorithm.code)
    }

    public mutating func update(_ raw: UnsafeRawBufferPointer) {
        guard let base = raw.baseAddress, raw.count > 0 else { return }
        iotkube_digest_update(&state, base, raw.count)
    }

    public mutating func update(_ bytes: some Collection<UInt8>) {
        if bytes.withContiguousStorageIfAvailable({ update(UnsafeRawBufferPointer($0)) }) == nil {
            Array(bytes).withUnsafeBytes { update($0) }
        }
    }

    /// The digest of everything given so far.
    public func finalize() -> [UInt8] {
        var copy = state
        return [UInt8](unsafeUninitializedCapacity: 64) { buffer, count in
            count = iotkube_digest_final(&copy, buffer.baseAddress!)
        }
    }

    /// The digest of `bytes` in one step.
    public static func hash(_ algorithm: Algorithm, _ bytes: some Collection<UInt8>) -> [UInt8] {
        var digest = StreamingDigest(algorithm)
        digest.update(bytes)
        return digest.finalize()
    }

    /// Lower-case hex of `bytes`.
    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        for byte in bytes { text += [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]] }
        return String(decoding: text, as: UTF8.self)
    }
}
