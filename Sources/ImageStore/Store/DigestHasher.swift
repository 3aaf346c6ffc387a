import NodeCrypto
import OCI

/// Incremental sha256 (or sha512) over streamed bytes.
struct DigestHasher {
    private let algorithm: StreamingDigest.Algorithm
    private var digest: StreamingDigest

    init(algorithm: String = "sha256") {
        self.algorithm = algorithm == "sha512" ? .sha512 : .sha256
        digest = StreamingDigest(self.algorithm)
    }

    mutating func update(_ bytes: some Collection<UInt8>) {
        digest.update(bytes)
    }

    mutating func update(_ raw: UnsafeRawBufferPointer) {
        digest.update(raw)
    }

    func finalize() -> OCI.Digest {
        let bytes = digest.finalize()
        if algorithm == .sha256 { return OCI.Digest(sha256: bytes) }
        var result = OCI.Digest(sha256: bytes)
        result = (try? OCI.Digest("sha512:" + result.hex)) ?? result
        return result
    }
}
