#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import OCI

/// What removal freed.
public struct RemovalReport: Sendable {
    public var untagged: [String] = []
    public var removedImages: [Digest] = []
    public var removedLayers = 0
    public var removedBlobs = 0
    public var freedBytes: Int64 = 0
}

extension ImageStore {
    /// Removes the image `text` names. Removing by tag from an image with several tags only
    /// untags it. An image in use is refused unless `force`.
    public func remove(_ text: String, force: Bool = false) throws(ImageStoreError) -> RemovalReport {
        var report = RemovalReport()
        try update { (database) throws(ImageStoreError) in
            guard let image = try Self.find(text, in: database.images) else {
                throw .init(.notFound, "no image \"\(text)\" in \(root)")
            }
            let index = database.images.firstIndex { $0.id == image.id }!
            let reference = try? ImageReference(parsing: text)
            if let name = reference?.description, image.names.contains(name), image.names.count > 1 {
                database.images[index].names.removeAll { $0 == name }
                report.untagged.append(name)
                return
            }
            guard !image.inUse || force else {
                throw .init(.inUse, "image \(image.names.first ?? image.id.short) is in use by \(image.users.joined(separator: ", ")); stop those pods first (or --force)")
            }
            report.untagged += image.names
            report.removedImages.append(image.id)
            database.images.remove(at: index)
        }
        // Waits for pulls and imports in flight, whose files are not recorded yet.
        let lease = try ContentLease.acquire(self, exclusive: true, wait: true)
        try collectUnreferenced(into: &report, lease: lease)
        return report
    }

    /// Removes images without a tag (superseded by a newer pull of their tag) and, with `all`,
    /// every image not in use; then unreferenced layers, blobs and stale partial downloads.
    /// With `waiting` false it does nothing while a pull or import is in flight.
    public func prune(all: Bool, waiting: Bool = true) throws(ImageStoreError) -> RemovalReport {
        var report = RemovalReport()
        guard let lease = try ContentLease.acquire(self, exclusive: true, wait: waiting) else { return report }
        try update { (database) throws(ImageStoreError) in
            let removable = database.images.filter { !$0.inUse && !$0.isPinned && (all || $0.isDangling) }
            report.removedImages = removable.map(\.id)
            for image in removable { report.untagged += image.names }
            database.images.removeAll { image in removable.contains { $0.id == image.id } }
        }
        try collectUnreferenced(into: &report, lease: lease)
        for name in FileSystem.listDirectory(blobs.ingestDirectory) {
            let path = "\(blobs.ingestDirectory)/\(name)"
            let descriptor = open(path, O_RDWR | O_CLOEXEC)
            guard descriptor >= 0 else { continue }
            // A partial download another pull holds is left alone.
            if flock(descriptor, LOCK_EX | LOCK_NB) == 0 {
                report.freedBytes += FileSystem.fileSize(path) ?? 0
                unlink(path)
            }
            close(descriptor)
        }
        return report
    }

    /// Image garbage collection as the kubelet does it: when the store's file system is more
    /// than `highPercent` full, remove unused images, least recently used first, until it is at
    /// most `lowPercent` full. Images in use are never removed.
    public func collectGarbage(highPercent: Int = 85, lowPercent: Int = 80) throws(ImageStoreError) -> RemovalReport {
        var report = RemovalReport()
        guard let capacity = FileSystem.capacity(root), capacity.total > 0 else { return report }
        let used = capacity.total - capacity.available
        guard used * 100 > capacity.total * Int64(highPercent) else { return report }
        var toFree = used - capacity.total * Int64(lowPercent) / 100
        // A pull or import in flight: the next pass (its files then recorded and counted).
        guard let lease = try ContentLease.acquire(self, exclusive: true, wait: false) else { return report }
        try update { (database) throws(ImageStoreError) in
            // Layers shared with a kept image free nothing; count only what removal frees.
            let candidates = database.images.filter { !$0.inUse && !$0.isPinned }.sorted { $0.lastUsedAt < $1.lastUsedAt }
            for image in candidates where toFree > 0 {
                database.images.removeAll { $0.id == image.id }
                let stillUsed = Set(database.images.flatMap(\.layers))
                let freed = image.unpackMode == .flattened ? image.size
                    : image.layers.filter { !stillUsed.contains($0) }.reduce(0) { $0 + (database.layers[$1.hex]?.size ?? 0) }
                toFree -= freed
                report.removedImages.append(image.id)
                report.untagged += image.names
            }
        }
        try collectUnreferenced(into: &report, lease: lease)
        return report
    }

    /// Deletes layers, flattened trees and blobs no image refers to; with `onlyBlobs`, just
    /// those blobs (what a failed pull added).
    /// Without `lease` (an exclusive content lease the caller holds) it sweeps only when no pull
    /// or import is in flight.
    func collectUnreferenced(into report: inout RemovalReport, onlyBlobs: Set<Digest>? = nil, lease: ContentLease? = nil) throws(ImageStoreError) {
        var held = lease
        if held == nil { held = try ContentLease.acquire(self, exclusive: true, wait: false) }
        guard held != nil else { return }
        defer { withExtendedLifetime(held) {} }
        try update { (database) throws(ImageStoreError) in
            let layers = Set(database.images.flatMap { $0.layers.map(\.hex) })
            let ids = Set(database.images.map(\.id.hex))
            var blobsInUse = Set(database.images.flatMap { [$0.id.hex, $0.manifestDigest.hex] })
            for image in database.images {
                for repoDigest in image.repoDigests {
                    if let at = repoDigest.lastIndex(of: "@"), let digest = try? Digest(String(repoDigest[repoDigest.index(after: at)...])) {
                        blobsInUse.insert(digest.hex)
                    }
                }
            }
            if let onlyBlobs {
                for digest in onlyBlobs where !blobsInUse.contains(digest.hex) {
                    if unlink(blobs.path(digest)) == 0 { report.removedBlobs += 1 }
                }
                return
            }
            for name in FileSystem.listDirectory("\(root)/layers") where !layers.contains(name) {
                let path = "\(root)/layers/\(name)"
                report.freedBytes += FileSystem.diskUsage(path)
                try FileSystem.removeTree(path)
                database.layers[name] = nil
                report.removedLayers += 1
            }
            for key in database.layers.keys where !layers.contains(key) { database.layers[key] = nil }
            for name in FileSystem.listDirectory("\(root)/rootfs") where !ids.contains(name) {
                let path = "\(root)/rootfs/\(name)"
                report.freedBytes += FileSystem.diskUsage(path)
                try FileSystem.removeTree(path)
            }
            for algorithm in ["sha256", "sha512"] {
                for name in FileSystem.listDirectory("\(blobs.blobsDirectory)/\(algorithm)") where !blobsInUse.contains(name) {
                    let path = "\(blobs.blobsDirectory)/\(algorithm)/\(name)"
                    report.freedBytes += FileSystem.fileSize(path) ?? 0
                    unlink(path)
                    report.removedBlobs += 1
                }
            }
        }
    }
}
