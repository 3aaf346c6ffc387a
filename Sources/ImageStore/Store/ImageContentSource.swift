import NIOCore
import OCI

/// Where a pull reads manifests and blobs from: a registry (``RegistryClient``) or an image
/// archive already taken into the blob store (``ArchiveContentSource``).
protocol ImageContentSource: Sendable {
    /// A manifest or index by tag or digest: its bytes, media type and (verified) digest.
    func manifest(_ reference: ImageReference, _ manifestReference: String, expected: Descriptor?) async throws(ImageStoreError)
        -> (bytes: [UInt8], mediaType: String, digest: Digest)

    /// Streams a blob into `sink` from `offset`; `restart` runs first when the source starts over at 0.
    func blob(_ reference: ImageReference, _ digest: Digest, offset: Int64,
              restart: () throws(ImageStoreError) -> Void,
              sink: (inout ByteBuffer) throws(ImageStoreError) -> Void) async throws(ImageStoreError)

    /// Whether the source itself holds this blob, so that a copy the store already has may
    /// stand in for it (a registry: any; an archive: only its own).
    func provides(_ digest: Digest) -> Bool
}

extension RegistryClient: ImageContentSource {
    func provides(_ digest: Digest) -> Bool { true }
}
