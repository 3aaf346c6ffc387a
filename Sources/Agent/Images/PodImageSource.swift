import ImageStore
import OCI

/// What the pod workers need of the image store: the node's ``ImageStore`` on a board, a fake
/// source (one that blocks, say) in the workers' own tests.
public protocol PodImageSource: Sendable {
    /// The image a reference names, if it is present.
    func lookup(_ text: String) throws(ImageStoreError) -> ImageRecord?
    /// Pulls the image for this node's platform; a cancelled pull throws and keeps what arrived.
    func pullImage(_ reference: ImageReference, registry: RegistryConfiguration) async throws -> PullResult
    func configuration(of image: ImageRecord) throws(ImageStoreError) -> ImageConfiguration
    func filesystem(of image: ImageRecord) -> ImageFilesystem
    /// Pins the image for a container run (garbage collection keeps it).
    func markUsed(_ id: Digest, by user: String) throws(ImageStoreError)
    func release(_ id: Digest, by user: String) throws(ImageStoreError)
}

extension ImageStore: PodImageSource {
    public func pullImage(_ reference: ImageReference, registry: RegistryConfiguration) async throws -> PullResult {
        try await pull(reference, registry: registry)
    }
}
