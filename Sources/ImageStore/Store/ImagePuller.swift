#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CFileSystem
import KubeCoding
import OCI

/// One pull: resolve the reference to this platform's manifest, fetch and verify the config and
/// layers, unpack each layer into staging, check its diffID, move it in, record the image.
struct ImagePuller: Sendable {
    let store: ImageStore
    let client: any ImageContentSource
    let platform: Platform
    let progress: (@Sendable (String) -> Void)?
    /// Archive imports keep compressed layers until the whole archive is in (another image of
    /// it may share one) and may pin the image against garbage collection.
    var keepsLayerBlobs = false
    var pins = false

    private func say(_ message: String) { progress?(message) }

    func pull(_ reference: ImageReference) async throws -> PullResult {
        let added = AddedBlobs()
        do {
            var lease: ContentLease? = try await ContentLease.shared(store)
            defer { lease = nil }
            return try await pull(reference, recordingInto: added)
        } catch {
            // Nothing of a failed pull stays: blobs it added that no image refers to go again
            // (a partial download in ingest/ stays for resumption). With other pulls or imports
            // in flight, the next sweep takes them instead.
            var unused = RemovalReport()
            try? store.collectUnreferenced(into: &unused, onlyBlobs: added.digests)
            throw error
        }
    }

    private func pull(_ reference: ImageReference, recordingInto added: AddedBlobs) async throws -> PullResult {
        // 1. The manifest for this platform.
        let top = try await client.manifest(reference, reference.manifestReference, expected: nil)
        var manifestBytes = top.bytes
        var manifestDigest = top.digest
        var manifestType = top.mediaType
        if MediaType.isIndex(top.mediaType) {
            let index: ImageIndex
            do { index = try KubeJSON.decode(ImageIndex.self, from: top.bytes, validation: .discard) } catch {
                throw ImageStoreError(.invalidContent, "\(reference): image index \(top.digest): \(error)")
            }
            let candidates = index.manifests.filter { MediaType.isManifest($0.mediaType) || $0.mediaType.isEmpty }
            let scored = candidates.compactMap { entry -> (Descriptor, Int)? in
                guard let entryPlatform = entry.platform else { return nil }
                return platform.score(entryPlatform).map { (entry, $0) }
            }
            guard let best = scored.max(by: { $0.1 < $1.1 })?.0 else {
                let offered = candidates.compactMap { $0.platform?.normalized.description }
                throw ImageStoreError(.notFound, "\(reference): no image for \(platform) (the index offers \(offered.isEmpty ? "no platforms" : offered.joined(separator: ", ")))")
            }
            say("\(reference): \(platform) → \(best.digest)")
            let chosen = try await client.manifest(reference, best.digest.description, expected: best)
            if !store.blobs.contains(top.digest) { added.insert(top.digest) }
            try store.blobs.store(top.bytes, as: top.digest)
            (manifestBytes, manifestDigest, manifestType) = (chosen.bytes, chosen.digest, chosen.mediaType)
        }
        guard MediaType.isManifest(manifestType) else {
            if manifestType.contains("manifest.v1") || manifestType.contains("prettyjws") {
                throw ImageStoreError(.invalidContent, "\(reference): Docker schema 1 manifests are not supported; push the image again with a current tool")
            }
            throw ImageStoreError(.invalidContent, "\(reference): unsupported manifest media type \"\(manifestType)\"")
        }
        let manifest: ImageManifest
        do { manifest = try KubeJSON.decode(ImageManifest.self, from: manifestBytes, validation: .discard) } catch {
            throw ImageStoreError(.invalidContent, "\(reference): manifest \(manifestDigest): \(error)")
        }

        // 2. The config: platform and diffIDs.
        guard manifest.config.size <= 32 << 20 else {
            throw ImageStoreError(.invalidContent, "\(reference): config declared as \(manifest.config.size) bytes (limit 32 MiB)")
        }
        var result = PullResult(image: ImageRecord(
            id: manifest.config.digest, names: [], repoDigests: [], manifestDigest: manifestDigest, platform: "",
            layers: [], unpackMode: store.unpackMode, size: 0, pulledAt: ImageStore.now(), lastUsedAt: ImageStore.now(), users: []
        ), resolvedDigest: top.digest)
        if !store.blobs.contains(manifest.config.digest) { added.insert(manifest.config.digest) }
        result.downloadedBytes += try await download(manifest.config, reference, what: "config").downloaded
        let configuration: ImageConfiguration
        do { configuration = try KubeJSON.decode(ImageConfiguration.self, from: store.blobs.read(manifest.config.digest), validation: .discard) } catch {
            throw ImageStoreError(.invalidContent, "\(reference): image config \(manifest.config.digest): \(error)")
        }
        guard platform.score(configuration.platform) != nil else {
            throw ImageStoreError(.notFound, "\(reference) is a \(configuration.platform) image; this board is \(platform)")
        }
        let diffIDs = configuration.rootfs.diffIDs
        guard diffIDs.count == manifest.layers.count else {
            throw ImageStoreError(.invalidContent, "\(reference): the manifest lists \(manifest.layers.count) layers but the config \(diffIDs.count) diff_ids")
        }
        guard !manifest.layers.isEmpty else { throw ImageStoreError(.invalidContent, "\(reference): the manifest has no layers") }
        if !store.blobs.contains(manifestDigest) { added.insert(manifestDigest) }
        try store.blobs.store(manifestBytes, as: manifestDigest)

        // 3. Layers.
        var layerSizes: [String: LayerRecord] = [:]
        let flattenedStaging = "\(store.root)/staging/rootfs-\(manifest.config.digest.hex)-\(getpid())"
        if store.unpackMode == .flattened {
            try FileSystem.removeTree(flattenedStaging)
            try FileSystem.makeDirectories(flattenedStaging, mode: 0o755)
        }
        do {
            for (index, layer) in manifest.layers.enumerated() {
                let diffID = diffIDs[index]
                guard let compression = MediaType.layerCompression(layer.mediaType) else {
                    throw ImageStoreError(.invalidContent, "\(reference): layer \(index + 1) has unsupported media type \"\(layer.mediaType)\"")
                }
                guard client.provides(layer.digest) else {
                    throw ImageStoreError(.notFound, "\(reference): layer \(index + 1) \(layer.digest) is not in the archive")
                }
                if store.unpackMode == .overlay && FileSystem.exists(store.layerPath(diffID)) {
                    result.reusedLayers += 1
                    continue
                }
                say("\(reference): layer \(index + 1)/\(manifest.layers.count) \(layer.digest.short) (\(layer.size) bytes)")
                var unpacked: UnpackReport?
                added.insert(layer.digest)
                for attempt in 1...2 where unpacked == nil {
                    result.downloadedBytes += try await download(layer, reference, what: "layer \(index + 1)").downloaded
                    unpacked = try unpackOrVanished(layer, diffID: diffID, compression: compression, into: flattenedStaging,
                                                  reference: reference, index: index, lowerDiffIDs: Array(diffIDs[..<index]),
                                                  lastAttempt: attempt == 2)
                }
                if store.unpackMode == .overlay {
                    layerSizes[diffID.hex] = LayerRecord(size: FileSystem.diskUsage(store.layerPath(diffID)), compressedDigest: layer.digest)
                }
                let report = unpacked ?? UnpackReport()
                // The unpacked layer is what is used; the compressed copy would only double the flash used.
                if !keepsLayerBlobs { unlink(store.blobs.path(layer.digest)) }
                result.unpackedLayers += 1
                result.report.entries += report.entries
                result.report.regularBytes += report.regularBytes
                result.report.droppedDevices += report.droppedDevices
                result.report.clearedSetuid += report.clearedSetuid
                result.report.skippedAttributes += report.skippedAttributes
                result.report.skippedDirectories += report.skippedDirectories
            }
            if store.unpackMode == .flattened {
                let final = store.rootfsPath(manifest.config.digest)
                if FileSystem.exists(final) {
                    try FileSystem.removeTree(flattenedStaging)
                } else {
                    try syncAndRename(flattenedStaging, to: final)
                }
            }
        } catch {
            try? FileSystem.removeTree(flattenedStaging)
            throw error
        }

        // 4. The record.
        let name = reference.digest == nil ? reference.description : nil
        let repoDigest = reference.pinned(to: top.digest)
        let platformText = configuration.platform.description
        let flattenedSize = store.unpackMode == .flattened ? FileSystem.diskUsage(store.rootfsPath(manifest.config.digest)) : 0
        result.image = try store.update { (database) throws(ImageStoreError) -> ImageRecord in
            for (hex, record) in layerSizes { database.layers[hex] = record }
            // A tag moves: no other image of this platform keeps the name.
            if let name {
                for index in database.images.indices where database.images[index].platform == platformText {
                    database.images[index].names.removeAll { $0 == name }
                }
            }
            var record = database.images.first { $0.id == manifest.config.digest } ?? result.image
            database.images.removeAll { $0.id == manifest.config.digest }
            if let name, !record.names.contains(name) { record.names.append(name) }
            if !record.repoDigests.contains(repoDigest) { record.repoDigests.append(repoDigest) }
            if name == nil { record.pulledByDigest = true }
            record.manifestDigest = manifestDigest
            record.platform = platformText
            record.layers = diffIDs
            record.unpackMode = store.unpackMode
            record.size = store.unpackMode == .overlay ? diffIDs.reduce(0) { $0 + (database.layers[$1.hex]?.size ?? 0) } : flattenedSize
            record.pulledAt = ImageStore.now()
            if pins { record.pinned = true }
            database.images.append(record)
            return record
        }
        return result
    }

    /// Unpacks a downloaded layer; nil when another pull removed the blob after unpacking the
    /// same layer (a missing blob fails at open, before anything is applied): fetch it again.
    private func unpackOrVanished(_ layer: Descriptor, diffID: Digest, compression: LayerCompression, into flattenedStaging: String,
                                  reference: ImageReference, index: Int, lowerDiffIDs: [Digest], lastAttempt: Bool) throws(ImageStoreError) -> UnpackReport? {
        do {
            switch store.unpackMode {
            case .overlay:
                return try unpackLayer(layer, diffID: diffID, compression: compression, reference: reference, index: index,
                                       lowerDiffIDs: lowerDiffIDs)
            case .flattened:
                return try apply(layer, compression: compression, diffID: diffID, into: flattenedStaging, reference: reference, index: index)
            }
        } catch {
            if !lastAttempt && !store.blobs.contains(layer.digest) && !FileSystem.exists(store.layerPath(diffID)) { return nil }
            throw error
        }
    }

    /// Transient registry failures (a dropped connection, a timeout) are retried this many times
    /// in all, each attempt resuming where the last one stopped.
    static let downloadAttempts = 3

    private func download(_ descriptor: Descriptor, _ reference: ImageReference, what: String) async throws(ImageStoreError) -> (downloaded: Int64, resumedFrom: Int64) {
        let client = self.client
        guard client.provides(descriptor.digest) else {
            throw .init(.notFound, "\(reference): \(what) \(descriptor.digest) is not in the archive")
        }
        var attempt = 1
        while true {
            do throws(ImageStoreError) {
                let result = try await store.blobs.ingest(descriptor, what: "\(reference) \(what)") { (offset, restart, sink) async throws(ImageStoreError) in
                    if offset > 0 { say("\(reference): resuming \(what) at byte \(offset)") }
                    try await client.blob(reference, descriptor.digest, offset: offset, restart: restart, sink: sink)
                }
                // A blob already present was verified by digest; its declared size (what the
                // decompression budget is reckoned from) must agree too.
                if let size = FileSystem.fileSize(store.blobs.path(descriptor.digest)), size != descriptor.size {
                    throw .init(.invalidContent, "\(reference) \(what) \(descriptor.digest): declared as \(descriptor.size) bytes but has \(size)")
                }
                return result
            } catch where error.kind == .registry && attempt < Self.downloadAttempts {
                say("\(reference): \(what): \(error.description); retrying")
                try? await Task.sleep(for: .milliseconds(200 * attempt))
                attempt += 1
            }
        }
    }

    /// The uncompressed-size budget for a layer: declared size × ratio (at least the floor),
    /// never more than the free space.
    private func budget(_ layer: Descriptor, compression: LayerCompression) -> (Int64, String) {
        var limit = compression == .none ? layer.size : max(ImageStore.expansionFloor, layer.size.multipliedReportingOverflow(by: ImageStore.expansionRatioLimit).partialValue)
        var reason = compression == .none ? "its declared size" : "\(ImageStore.expansionRatioLimit)× its \(layer.size) compressed bytes"
        if let available = FileSystem.capacity(store.root)?.available, available - ImageStore.diskReserve < limit {
            limit = max(0, available - ImageStore.diskReserve)
            reason = LayerStream.freeSpaceReason
        }
        return (limit, reason)
    }

    private func apply(_ layer: Descriptor, compression: LayerCompression, diffID: Digest, into directory: String,
                       reference: ImageReference, index: Int, lowerDiffIDs: [Digest] = []) throws(ImageStoreError) -> UnpackReport {
        let (limit, reason) = budget(layer, compression: compression)
        let stream = try LayerStream(path: store.blobs.path(layer.digest), compression: compression, budget: limit, budgetReason: reason)
        let reader = LayerReader(stream)
        var tar = TarReader(reader)
        var unpacker = LayerUnpacker(target: directory, mode: store.unpackMode, policy: store.policy)
        if store.unpackMode == .overlay { unpacker.lowerDirectories = lowerDiffIDs.reversed().map(store.layerPath) }
        do {
            try unpacker.unpack(&tar)
            try reader.drain()
        } catch {
            throw ImageStoreError(error.kind, "\(reference) layer \(index + 1) (\(layer.digest.short)): \(error.description)")
        }
        guard stream.diffID == diffID else {
            throw ImageStoreError(.invalidContent, "\(reference) layer \(index + 1) (\(layer.digest.short)): uncompressed digest \(stream.diffID) does not match the config's diff_id \(diffID)")
        }
        return unpacker.report
    }

    /// Unpacks into staging under a per-layer lock, then moves the finished layer in.
    private func unpackLayer(_ layer: Descriptor, diffID: Digest, compression: LayerCompression,
                             reference: ImageReference, index: Int, lowerDiffIDs: [Digest]) throws(ImageStoreError) -> UnpackReport {
        let final = store.layerPath(diffID)
        let lock = "\(store.root)/staging/\(diffID.hex).lock"
        return try FileSystem.withLock(lock) { () throws(ImageStoreError) -> UnpackReport in
            // Whoever waited on this lock re-checks `final` after getting it, so removing it is safe.
            defer { unlink(lock) }
            if FileSystem.exists(final) { return UnpackReport() }
            let staging = "\(store.root)/staging/\(diffID.hex)-\(getpid())"
            try FileSystem.removeTree(staging)
            try FileSystem.makeDirectories(staging, mode: 0o755)
            do throws(ImageStoreError) {
                let report = try apply(layer, compression: compression, diffID: diffID, into: staging, reference: reference, index: index,
                                       lowerDiffIDs: lowerDiffIDs)
                try syncAndRename(staging, to: final)
                return report
            } catch {
                try? FileSystem.removeTree(staging)
                throw error
            }
        }
    }

    /// Flushes the unpacked files (one syncfs, not an fsync per file) and renames them in.
    private func syncAndRename(_ staging: String, to final: String) throws(ImageStoreError) {
        let descriptor = open(staging, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if descriptor >= 0 {
            iotkube_syncfs(descriptor)
            close(descriptor)
        }
        guard rename(staging, final) == 0 else {
            let code = errno
            // Another process finished the same content first: use its copy.
            if (code == EEXIST || code == ENOTEMPTY) && FileSystem.exists(final) {
                try FileSystem.removeTree(staging)
                return
            }
            throw FileSystem.error("rename", final, code)
        }
        FileSystem.fsyncDirectory(final.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/"))
    }
}

/// The blobs one pull put into the store (removed again if the pull fails).
final class AddedBlobs: @unchecked Sendable {
    private(set) var digests: Set<Digest> = []
    func insert(_ digest: Digest) { digests.insert(digest) }
}
