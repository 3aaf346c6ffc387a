#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import OCI

/// Reads an image archive (an OCI image layout or a `docker save` tarball, compressed with gzip
/// or zstd or not) in one pass. Every regular file is taken into the blob store under the digest
/// of its content (a `blobs/<algorithm>/<hex>` entry must match its name); the archive's small
/// metadata files are kept in memory. Entry names are only ever looked up, never used as paths,
/// and links inside the archive are followed only to other entries of the archive.
struct ImageArchiveReader {
    let store: ImageStore
    let path: String

    /// The metadata files read into memory, and their size limit.
    static let metadataNames: Set<String> = ["index.json", "manifest.json", "oci-layout", "repositories"]
    static let metadataLimit: Int64 = 4 << 20
    /// Entries an archive may have (a docker save of many images has a few per layer).
    static let entryLimit = 100_000
    /// All entry names and link targets together.
    static let nameBytesLimit = 16 << 20

    /// What the archive held.
    struct Contents {
        /// Regular files by normalised entry name: the blob they are now, and their size.
        var files: [String: (digest: Digest, size: Int64)] = [:]
        /// Symbolic and hard links by entry name: the entry they name.
        var links: [String: String] = [:]
        var metadata: [String: [UInt8]] = [:]
        /// Blobs this import put into the store (what goes again when nothing refers to them).
        var added: Set<Digest> = []
        /// Manifests made for `docker save` images (the archive holds them in effect).
        var made: Set<Digest> = []

        /// The file an entry name leads to, following links within the archive (8 at most).
        func file(_ name: String) -> (digest: Digest, size: Int64)? {
            var current = ImageArchiveReader.normalized(name)
            for _ in 0..<8 {
                if let file = files[current] { return file }
                guard let target = links[current] else { return nil }
                current = target
            }
            return nil
        }
    }

    /// `./a//b/` → `a/b`; `..` climbs within the archive and never above its top.
    static func normalized(_ name: String) -> String {
        var parts: [Substring] = []
        for part in name.split(separator: "/") {
            switch part {
            case ".": continue
            case "..": _ = parts.popLast()
            default: parts.append(part)
            }
        }
        return parts.joined(separator: "/")
    }

    /// How the archive file is compressed, from its first bytes.
    static func compression(of path: String) throws(ImageStoreError) -> LayerCompression {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard descriptor >= 0 else { throw FileSystem.error("open", path) }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw FileSystem.error("stat", path) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw .init(.invalidContent, "\(path) is not a regular file")
        }
        var magic = [UInt8](repeating: 0, count: 4)
        let count = magic.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, 4) }
        guard count >= 0 else { throw FileSystem.error("read", path) }
        if count >= 2 && magic[0] == 0x1F && magic[1] == 0x8B { return .gzip }
        if count == 4 && magic == [0x28, 0xB5, 0x2F, 0xFD] { return .zstd }
        return LayerCompression.none
    }

    /// Reads the archive into `contents`; on failure `contents.added` still lists what came in.
    func read(into contents: inout Contents) throws(ImageStoreError) {
        let compression = try Self.compression(of: path)
        // Uncompressed, the archive cannot give more than its size; compressed, at most the
        // layers' ratio over it (at least their floor). Never more than the free space.
        let fileSize = FileSystem.fileSize(path) ?? 0
        var budget = compression == .none ? fileSize
            : max(ImageStore.expansionFloor, fileSize.multipliedReportingOverflow(by: ImageStore.expansionRatioLimit).partialValue)
        var reason = compression == .none ? "its size" : "\(ImageStore.expansionRatioLimit)× its \(fileSize) compressed bytes"
        if let available = FileSystem.capacity(store.root)?.available, available - ImageStore.diskReserve < budget {
            budget = max(0, available - ImageStore.diskReserve)
            reason = LayerStream.freeSpaceReason
        }
        let stream = try LayerStream(path: path, compression: compression, budget: budget, budgetReason: reason, label: "archive \(path)")
        let reader = LayerReader(stream)
        var tar = TarReader(reader)
        var nameBytes = 0
        do throws(ImageStoreError) {
            var count = 0
            while let entry = try nextEntry(&tar) {
                count += 1
                guard count <= Self.entryLimit else {
                    throw ImageStoreError(.invalidContent, "more than \(Self.entryLimit) entries; not an image archive")
                }
                let name = Self.normalized(entry.path)
                nameBytes += name.utf8.count + entry.linkTarget.utf8.count
                guard nameBytes <= Self.nameBytesLimit else {
                    throw ImageStoreError(.invalidContent, "entry names take more than \(Self.nameBytesLimit) bytes; not an image archive")
                }
                switch entry.kind {
                case .regular:
                    if Self.metadataNames.contains(name) {
                        guard entry.size <= Self.metadataLimit else {
                            throw ImageStoreError(.invalidContent, "entry \(name) has \(entry.size) bytes (limit \(Self.metadataLimit))")
                        }
                        var bytes: [UInt8] = []
                        try tar.readData(entry) { (raw) throws(ImageStoreError) in bytes.append(contentsOf: raw) }
                        contents.metadata[name] = bytes
                        continue
                    }
                    let expected = Self.blobDigest(name)
                    let taken = try store.blobs.take(size: entry.size, expected: expected, what: "entry \(name)") { (sink) throws(ImageStoreError) in
                        try tar.readData(entry, sink)
                    }
                    if taken.added { contents.added.insert(taken.digest) }
                    contents.files[name] = (taken.digest, entry.size)
                    contents.links[name] = nil
                case .symbolicLink:
                    // Relative to the link's directory, within the archive.
                    let directory = name.split(separator: "/").dropLast().joined(separator: "/")
                    let target = entry.linkTarget.hasPrefix("/") ? entry.linkTarget : directory + "/" + entry.linkTarget
                    contents.links[name] = Self.normalized(target)
                case .hardLink:
                    contents.links[name] = Self.normalized(entry.linkTarget)
                default:
                    continue   // directories, devices, FIFOs: nothing an image archive needs
                }
            }
        } catch {
            throw ImageStoreError(error.kind, "\(path): \(error.description)")
        }
    }

    private func nextEntry(_ tar: inout TarReader) throws(ImageStoreError) -> TarEntry? {
        do { return try tar.next() } catch {
            // The first header decides whether this is a tar archive at all.
            if tar.entryIndex <= 1 { throw .init(.invalidContent, "not a tar archive (nor a gzip or zstd compressed one): \(error.description)") }
            throw error
        }
    }

    /// The digest a `blobs/<algorithm>/<hex>` entry name claims.
    static func blobDigest(_ name: String) -> Digest? {
        let parts = name.split(separator: "/")
        guard parts.count == 3, parts[0] == "blobs" else { return nil }
        return try? Digest("\(parts[1]):\(parts[2])")
    }
}
