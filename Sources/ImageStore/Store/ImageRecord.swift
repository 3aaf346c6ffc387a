import OCI

/// One image in the store, as `images.json` keeps it.
public struct ImageRecord: Codable, Sendable, Hashable {
    /// The config digest (the image ID).
    public var id: Digest
    /// Tagged references pointing at this image (`docker.io/library/busybox:1.36`).
    public var names: [String]
    /// `name@digest` of what each pull resolved (the index digest for a multi-arch image).
    public var repoDigests: [String]
    /// The platform manifest that was unpacked.
    public var manifestDigest: Digest
    public var platform: String
    /// Layer diffIDs, bottom first.
    public var layers: [Digest]
    /// How the layers are laid out on disk.
    public var unpackMode: UnpackMode
    /// Unpacked bytes (sum of the layer directories, or of the flattened rootfs).
    public var size: Int64
    /// Seconds since the epoch.
    public var pulledAt: Int64
    public var lastUsedAt: Int64
    /// Who uses the image (pod UIDs); garbage collection and `rm` leave it alone while set.
    public var users: [String]
    /// Pulled by digest (`name@sha256:…`): untagged on purpose, not left over.
    public var pulledByDigest: Bool?
    /// Imported from the pre-load directory (or with `images import --pin`): garbage collection
    /// and `prune` leave it alone, as the kubelet does with pinned images.
    public var pinned: Bool?

    public var inUse: Bool { !users.isEmpty }
    /// Untagged because its tag moved to a newer image (what `prune` without `--all` removes).
    public var isDangling: Bool { names.isEmpty && pulledByDigest != true }
    public var isPinned: Bool { pinned == true }
}

/// Unpacked layers shared between images (overlay mode), by diffID hex.
struct LayerRecord: Codable, Sendable, Hashable {
    var size: Int64
    var compressedDigest: Digest
}

/// The whole metadata file; written atomically and only when something changed.
struct ImageDatabase: Codable, Sendable {
    var version = 1
    var images: [ImageRecord] = []
    var layers: [String: LayerRecord] = [:]
}
