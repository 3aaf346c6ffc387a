import KubeCoding
import NIOCore
import OCI

/// The manifests and blobs of an image archive, already taken into the blob store (and so
/// verified against their digests) by ``ImageArchiveReader``: what the puller reads when it
/// installs an image from an archive instead of a registry.
struct ArchiveContentSource: ImageContentSource {
    let store: ImageStore
    /// The archive, for messages.
    let archive: String
    /// The blobs the archive holds: nothing else of the store is used.
    let digests: Set<Digest>
    /// The image's top descriptor: what the reference itself names (an index or a manifest).
    var top: Descriptor?

    init(store: ImageStore, archive: String, digests: Set<Digest>) {
        self.store = store
        self.archive = archive
        self.digests = digests
    }

    /// The source for one image of the archive.
    func naming(_ top: Descriptor) -> ArchiveContentSource {
        var source = self
        source.top = top
        return source
    }

    func provides(_ digest: Digest) -> Bool { digests.contains(digest) }

    func manifest(_ reference: ImageReference, _ manifestReference: String, expected: Descriptor?) async throws(ImageStoreError)
        -> (bytes: [UInt8], mediaType: String, digest: Digest) {
        guard let descriptor = expected ?? top else { throw .init(.notFound, "\(reference): no manifest named in \(archive)") }
        guard descriptor.size >= 0, descriptor.size <= Int64(RegistryClient.manifestLimit) else {
            throw .init(.invalidContent, "\(reference): manifest \(descriptor.digest) declared as \(descriptor.size) bytes (limit \(RegistryClient.manifestLimit))")
        }
        guard provides(descriptor.digest), store.blobs.contains(descriptor.digest) else {
            throw .init(.notFound, "\(reference): \(archive) has no manifest \(descriptor.digest)")
        }
        let bytes = try store.blobs.read(descriptor.digest, limit: RegistryClient.manifestLimit)
        guard bytes.count == descriptor.size else {
            throw .init(.invalidContent, "\(reference): manifest \(descriptor.digest) has \(bytes.count) bytes, not the declared \(descriptor.size)")
        }
        var mediaType = descriptor.mediaType
        if let declared = (try? KubeJSON.parse(bytes))?.string(at: ["mediaType"]) { mediaType = declared }
        return (bytes, mediaType, descriptor.digest)
    }

    func blob(_ reference: ImageReference, _ digest: Digest, offset: Int64,
              restart: () throws(ImageStoreError) -> Void,
              sink: (inout ByteBuffer) throws(ImageStoreError) -> Void) async throws(ImageStoreError) {
        // Only called for a blob the store lacks: the archive did not have it.
        throw .init(.notFound, "\(reference): \(archive) has no blob \(digest)")
    }
}
