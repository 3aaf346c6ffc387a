import KubeCoding
import OCI

/// One image an archive brought in.
public struct ImportedImage: Sendable {
    /// The names it got (`docker.io/library/app:1`).
    public var names: [String]
    public var result: PullResult
}

/// What an import did: the images it installed, the entries it passed over and the images
/// that failed (why, each).
public struct ImportReport: Sendable {
    public var images: [ImportedImage] = []
    public var skipped: [String] = []
    public var failures: [String] = []
    /// Tags that pointed at another image before (as `docker load` says when it moves one).
    public var movedTags: [String] = []
}

/// An entry of a `docker save` tarball's `manifest.json`.
struct DockerArchiveEntry: Decodable {
    var config: String
    var repoTags: [String]?
    var layers: [String]

    enum CodingKeys: String, CodingKey {
        case config = "Config", repoTags = "RepoTags", layers = "Layers"
    }
}

extension ImageStore {
    /// Images one archive may hold.
    static let archiveImageLimit = 256
    /// Names one image may get from an archive.
    static let archiveNamesPerImageLimit = 32

    /// Imports the images of an archive: an OCI image layout (`skopeo copy … oci-archive:`,
    /// `podman save --format oci-archive`, Docker ≥ 25 `docker save`) or a `docker save` tarball,
    /// gzip or zstd compressed or not. Each image is installed for `platform` (default: this
    /// board) with the same checks as a pull: digests, diffIDs, decompression budgets and the
    /// hostile-layer rules. Images need a name (`org.opencontainers.image.ref.name` or
    /// `io.containerd.image.name` as a full reference, or `RepoTags`); unnamed ones are skipped
    /// and reported. `pin` keeps the images from garbage collection. Blobs the archive brought
    /// that no image uses go again.
    public func importArchive(_ path: String, platform: Platform? = nil, pin: Bool = false,
                              progress: (@Sendable (String) -> Void)? = nil) async throws -> ImportReport {
        var contents = ImageArchiveReader.Contents()
        var report = ImportReport()
        do {
            // Until the images are recorded, no sweep may take what the archive brought.
            var lease: ContentLease? = try await ContentLease.shared(self)
            defer { lease = nil }
            try ImageArchiveReader(store: self, path: path).read(into: &contents)
            try await install(&contents, from: path, platform: platform, pin: pin, progress: progress, into: &report)
        } catch {
            cleanUp(contents)
            throw error
        }
        cleanUp(contents)
        return report
    }

    /// Blobs the archive brought that no image uses go again (when no other pull or import is
    /// in flight; else the next sweep takes them).
    private func cleanUp(_ contents: ImageArchiveReader.Contents) {
        var unused = RemovalReport()
        try? collectUnreferenced(into: &unused, onlyBlobs: contents.added)
    }

    private func install(_ contents: inout ImageArchiveReader.Contents, from path: String, platform: Platform?, pin: Bool,
                         progress: (@Sendable (String) -> Void)?, into report: inout ImportReport) async throws {
        let images: [(names: [ImageReference], top: Descriptor)]
        do {
            images = try archiveImages(&contents, skipped: &report.skipped)
        } catch {
            throw ImageStoreError(error.kind, "\(path): \(error.description)")
        }
        guard !images.isEmpty else {
            let why = report.skipped.isEmpty ? "" : ": " + report.skipped.joined(separator: "; ")
            throw ImageStoreError(.invalidContent, "\(path): no named image to import\(why)")
        }
        let target = platform ?? HostPlatform.current()
        let before = (try? loadDatabase().images) ?? []
        // Only what the archive holds is used, never a blob or layer the store had before: an
        // archive naming another image's digests gets nothing of it.
        let source = ArchiveContentSource(store: self, archive: path, digests: Set(contents.files.values.map(\.digest)).union(contents.added).union(contents.made))
        for (names, top) in images {
            let reference = names[0]
            var puller = ImagePuller(store: self, client: source.naming(top), platform: target, progress: progress)
            puller.keepsLayerBlobs = true
            puller.pins = pin
            do {
                var result = try await puller.pull(reference)
                if names.count > 1 {
                    result.image = try tag(result.image.id, with: Array(names.dropFirst()), repoDigest: top.digest)
                }
                for name in names.map(\.description) {
                    if let previous = before.first(where: { $0.names.contains(name) && $0.id != result.image.id && $0.platform == result.image.platform }) {
                        report.movedTags.append("\(name) (was image \(previous.id.short))")
                    }
                }
                report.images.append(ImportedImage(names: names.map(\.description), result: result))
            } catch let error as ImageStoreError {
                report.failures.append("\(path): \(error.description)")
            }
        }
    }

    /// The images an archive names, with their top descriptors: from `index.json` (an OCI
    /// layout) when there is one, else from `manifest.json` (docker save), whose manifests are
    /// made here from the listed config and layer files.
    private func archiveImages(_ contents: inout ImageArchiveReader.Contents, skipped: inout [String]) throws(ImageStoreError)
        -> [(names: [ImageReference], top: Descriptor)] {
        var images: [(names: [ImageReference], top: Descriptor)] = []
        func add(_ name: ImageReference, _ top: Descriptor) {
            if let index = images.firstIndex(where: { $0.top.digest == top.digest }) {
                guard !images[index].names.contains(name) else { return }
                guard images[index].names.count < Self.archiveNamesPerImageLimit else {
                    skipped.append("\(name): more than \(Self.archiveNamesPerImageLimit) names for one image")
                    return
                }
                images[index].names.append(name)
            } else {
                images.append(([name], top))
            }
        }
        if let bytes = contents.metadata["index.json"] {
            let index: ImageIndex
            do { index = try KubeJSON.decode(ImageIndex.self, from: bytes, validation: .discard) } catch {
                throw .init(.invalidContent, "index.json: \(error)")
            }
            guard index.manifests.count <= Self.archiveImageLimit else {
                throw .init(.invalidContent, "index.json lists \(index.manifests.count) images (limit \(Self.archiveImageLimit))")
            }
            for (position, entry) in index.manifests.enumerated() {
                let annotations = entry.annotations ?? [:]
                let candidates = [annotations["io.containerd.image.name"], annotations["org.opencontainers.image.ref.name"]].compactMap { $0 }
                // A bare tag ("latest") names no repository.
                let full = candidates.first { $0.contains("/") || $0.contains(":") }
                guard let text = full else {
                    skipped.append("index.json entry \(position + 1) (\(entry.digest.short)) has no full image name\(candidates.first.map { " (only \"\($0)\")" } ?? ""); save it with one, e.g. skopeo copy … oci-archive:FILE:registry/name:tag")
                    continue
                }
                let reference: ImageReference
                do { reference = try ImageReference(parsing: text) } catch {
                    skipped.append("index.json entry \(position + 1): \(error.description)")
                    continue
                }
                guard reference.digest == nil else {
                    skipped.append("index.json entry \(position + 1): \"\(text)\" is pinned to a digest; a name to import under needs a tag")
                    continue
                }
                add(reference, entry)
            }
            return images
        }
        if let bytes = contents.metadata["manifest.json"] {
            let entries: [DockerArchiveEntry]
            do { entries = try KubeJSON.decode([DockerArchiveEntry].self, from: bytes, validation: .discard) } catch {
                throw .init(.invalidContent, "manifest.json: \(error)")
            }
            guard entries.count <= Self.archiveImageLimit else {
                throw .init(.invalidContent, "manifest.json lists \(entries.count) images (limit \(Self.archiveImageLimit))")
            }
            for (position, entry) in entries.enumerated() {
                let tags = entry.repoTags ?? []
                guard !tags.isEmpty else {
                    skipped.append("manifest.json entry \(position + 1) (\(entry.config)) has no RepoTags; save it by name (docker save NAME:TAG)")
                    continue
                }
                let top = try dockerArchiveManifest(entry, position: position, contents: &contents)
                for tag in tags.prefix(Self.archiveNamesPerImageLimit + 1) {
                    do {
                        let reference = try ImageReference(parsing: tag)
                        guard reference.digest == nil else {
                            skipped.append("manifest.json entry \(position + 1): \"\(tag)\" is pinned to a digest; a name to import under needs a tag")
                            continue
                        }
                        add(reference, top)
                    } catch {
                        skipped.append("manifest.json entry \(position + 1): \(error.description)")
                    }
                }
            }
            return images
        }
        throw .init(.invalidContent, "not an image archive: it has neither index.json (an OCI layout) nor manifest.json (docker save)")
    }

    /// The manifest a `docker save` entry implies, stored as a blob: its config and layer files
    /// as descriptors, each layer's compression read from its first bytes.
    private func dockerArchiveManifest(_ entry: DockerArchiveEntry, position: Int, contents: inout ImageArchiveReader.Contents) throws(ImageStoreError) -> Descriptor {
        let label = "manifest.json entry \(position + 1)"
        guard let config = contents.file(entry.config) else {
            throw .init(.invalidContent, "\(label): the archive has no config file \(entry.config)")
        }
        guard entry.layers.count <= 1000 else { throw .init(.invalidContent, "\(label): \(entry.layers.count) layers (limit 1000)") }
        var layers: [Descriptor] = []
        for layer in entry.layers {
            guard let file = contents.file(layer) else {
                throw .init(.invalidContent, "\(label): the archive has no layer file \(layer)")
            }
            let mediaType: String
            switch try ImageArchiveReader.compression(of: blobs.path(file.digest)) {
            case .none: mediaType = "application/vnd.docker.image.rootfs.diff.tar"
            case .gzip: mediaType = MediaType.dockerLayerGzip
            case .zstd: mediaType = MediaType.ociLayerZstd
            }
            layers.append(Descriptor(mediaType: mediaType, digest: file.digest, size: file.size))
        }
        let manifest = ImageManifest(schemaVersion: 2, mediaType: MediaType.dockerManifest,
                                     config: Descriptor(mediaType: MediaType.dockerConfig, digest: config.digest, size: config.size),
                                     layers: layers, annotations: nil)
        let bytes: [UInt8]
        do { bytes = try KubeJSON.encode(manifest) } catch { throw .init(.invalidContent, "\(label): \(error)") }
        var hasher = DigestHasher()
        hasher.update(bytes)
        let digest = hasher.finalize()
        if !blobs.contains(digest) { contents.added.insert(digest) }
        contents.made.insert(digest)
        try blobs.store(bytes, as: digest)
        return Descriptor(mediaType: MediaType.dockerManifest, digest: digest, size: Int64(bytes.count))
    }

    /// Gives an image more names (moving each from any other image of its platform, as a pull
    /// of that tag would) and their repo digests.
    func tag(_ id: Digest, with names: [ImageReference], repoDigest: Digest) throws(ImageStoreError) -> ImageRecord {
        try update { (database) throws(ImageStoreError) -> ImageRecord in
            guard let index = database.images.firstIndex(where: { $0.id == id }) else {
                throw .init(.notFound, "image \(id.short) is not in the store")
            }
            let platform = database.images[index].platform
            for name in names.map(\.description) {
                for other in database.images.indices where other != index && database.images[other].platform == platform {
                    database.images[other].names.removeAll { $0 == name }
                }
                if !database.images[index].names.contains(name) { database.images[index].names.append(name) }
            }
            for name in names {
                let pinned = name.pinned(to: repoDigest)
                if !database.images[index].repoDigests.contains(pinned) { database.images[index].repoDigests.append(pinned) }
            }
            return database.images[index]
        }
    }
}
