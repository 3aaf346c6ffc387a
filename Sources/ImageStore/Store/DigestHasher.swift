import Crypto
import OCI

/// Incremental sha256 (or sha512) over streamed bytes.
struct DigestHasher {
    private var sha256: SHA256?
    private var sha512: SHA512?

    init(algorithm: String = "sha256") {
        if algorithm == "sha512" { sha512 = SHA512() } else { sha256 = SHA256() }
    }

    mutating func update(_ bytes: some Collection<UInt8>) {
        if let contiguous = bytes.withContiguousStorageIfAvailable({ UnsafeRawBufferPointer($0) }) {
            update(contiguous)
        } else {
            let copy = Array(bytes)
            copy.withUnsafeBytes { update($0) }
        }
    }

    mutating func update(_ raw: UnsafeRawBufferPointer) {
        if sha256 != nil { sha256!.update(bufferPointer: raw) } else { sha512!.update(bufferPointer: raw) }
    }

    func finalize() -> OCI.Digest {
        if let sha256 { return OCI.Digest(sha256: sha256.finalize()) }
        let bytes = Array(sha512!.finalize())
        var digest = OCI.Digest(sha256: bytes)
        digest = (try? OCI.Digest("sha512:" + digest.hex)) ?? digest
        return digest
    }
}
