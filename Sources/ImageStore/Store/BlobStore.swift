#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import NIOCore
import OCI
import SystemSupport

/// Content-addressed blobs under `<root>/blobs/<algorithm>/<hex>`. A blob enters only through
/// `ingest`: downloaded into `<root>/ingest/<hex>.partial` (kept across failures so a later pull
/// resumes with a range request), its size and digest checked, fsynced and renamed in. A file in
/// `blobs/` has therefore always been verified.
struct BlobStore: Sendable {
    let root: String

    var blobsDirectory: String { root + "/blobs" }
    var ingestDirectory: String { root + "/ingest" }

    func path(_ digest: Digest) -> String { "\(blobsDirectory)/\(digest.algorithm)/\(digest.hex)" }

    func contains(_ digest: Digest) -> Bool { FileSystem.exists(path(digest)) }

    func prepare() throws(ImageStoreError) {
        try FileSystem.makeDirectories(blobsDirectory + "/sha256")
        try FileSystem.makeDirectories(blobsDirectory + "/sha512")
        try FileSystem.makeDirectories(ingestDirectory)
    }

    /// Reads a stored blob whole (manifests and configs), re-checking its size limit.
    func read(_ digest: Digest, limit: Int = 32 << 20) throws(ImageStoreError) -> [UInt8] {
        let file = path(digest)
        let descriptor = open(file, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw FileSystem.error("open", file) }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = SystemCall.retrying { chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) } }
            if count < 0 { throw FileSystem.error("read", file) }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[..<count])
            guard bytes.count <= limit else { throw .init(.invalidContent, "blob \(digest) is larger than \(limit) bytes") }
        }
        return bytes
    }

    /// Stores bytes already verified against `digest` (manifests fetched and checked whole).
    func store(_ bytes: [UInt8], as digest: Digest) throws(ImageStoreError) {
        guard !contains(digest) else { return }
        do { try AtomicFile.write(bytes, to: path(digest), mode: 0o600) } catch {
            throw FileSystem.error(error.operation, error.path, error.code)
        }
    }

    private func commit(_ temporary: String, _ digest: Digest) throws(ImageStoreError) {
        let final = path(digest)
        guard rename(temporary, final) == 0 else {
            let code = errno
            unlink(temporary)
            throw FileSystem.error("rename", final, code)
        }
        FileSystem.fsyncDirectory("\(blobsDirectory)/\(digest.algorithm)")
    }

    /// Downloads `descriptor` with `fetch` (given the resume offset and a sink) unless present.
    /// Bytes beyond the declared size, a short body and a digest mismatch are all errors; a short
    /// body keeps the partial file for resumption, a wrong one deletes it.
    func ingest(
        _ descriptor: Descriptor, what: String,
        fetch: (Int64, () throws(ImageStoreError) -> Void, (inout ByteBuffer) throws(ImageStoreError) -> Void) async throws(ImageStoreError) -> Void
    ) async throws(ImageStoreError) -> (downloaded: Int64, resumedFrom: Int64) {
        let digest = descriptor.digest
        if contains(digest) { return (0, 0) }
        guard descriptor.size >= 0 else { throw .init(.invalidContent, "\(what) \(digest): negative size") }
        if let available = FileSystem.capacity(ingestDirectory)?.available, available < descriptor.size {
            throw .init(.storage, "\(what) \(digest) needs \(descriptor.size) bytes but only \(available) are free in \(root) (disk full)")
        }
        let partial = "\(ingestDirectory)/\(digest.hex).partial"
        let file = try lockPartial(partial)
        defer { close(file) }
        if contains(digest) {
            // Someone else finished it while we waited; drop the empty file our open made.
            if lseek(file, 0, SEEK_END) == 0 { unlink(partial) }
            return (0, 0)
        }
        var hasher = DigestHasher(algorithm: digest.algorithm)
        var offset = Int64(lseek(file, 0, SEEK_END))
        if offset > descriptor.size { offset = 0 }
        if offset > 0 { try hashExisting(file, length: offset, into: &hasher, path: partial) }
        var resumedFrom = offset
        var received: Int64 = 0
        var position = offset
        do throws(ImageStoreError) {
            // A partial file that is already complete (an interrupted commit) needs no request.
            if offset < descriptor.size { try await fetch(offset, { () throws(ImageStoreError) in
                // The registry ignored the range: start over.
                guard ftruncate(file, 0) == 0, lseek(file, 0, SEEK_SET) == 0 else { throw FileSystem.error("truncate", partial) }
                hasher = DigestHasher(algorithm: digest.algorithm)
                position = 0
                resumedFrom = 0
            }) { (buffer: inout ByteBuffer) throws(ImageStoreError) in
                received += Int64(buffer.readableBytes)
                guard position + Int64(buffer.readableBytes) <= descriptor.size else {
                    ftruncate(file, 0)
                    unlink(partial)
                    throw .init(.invalidContent, "\(what) \(digest): the registry sent more than the declared \(descriptor.size) bytes")
                }
                try buffer.withUnsafeReadableBytes { (raw) throws(ImageStoreError) in
                    hasher.update(raw)
                    try FileSystem.writeAll(file, raw, path: partial)
                }
                position += Int64(buffer.readableBytes)
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            } }
        } catch where error.kind == .registry {
            // A connection that drops after the last byte still delivered the blob (the digest
            // check below decides); one that drops earlier leaves a partial file to resume.
            if position < descriptor.size {
                throw .init(.registry, "\(what) \(digest): download truncated at \(position) of \(descriptor.size) bytes (kept; the next pull resumes): \(error.description)")
            }
        }
        guard position == descriptor.size else {
            throw .init(.registry, "\(what) \(digest): download truncated at \(position) of \(descriptor.size) bytes (kept; the next pull resumes)")
        }
        guard hasher.finalize() == digest else {
            ftruncate(file, 0)
            unlink(partial)
            throw .init(.invalidContent, "\(what) \(digest): content does not match its digest (got \(hasher.finalize())); discarded")
        }
        guard fsync(file) == 0 else { throw FileSystem.error("fsync", partial) }
        try commit(partial, digest)
        return (received, resumedFrom)
    }

    /// Takes a blob from a local stream (an archive entry of `size` bytes that `produce` hands
    /// over in chunks): written to a private locked file in `ingest/`, hashed, checked against
    /// `expected` when the archive names the digest, fsynced and renamed in. Returns the digest
    /// and whether the blob is new to the store. A failure leaves nothing behind.
    func take(size: Int64, expected: Digest?, what: String,
              produce: ((UnsafeRawBufferPointer) throws(ImageStoreError) -> Void) throws(ImageStoreError) -> Void) throws(ImageStoreError) -> (digest: Digest, added: Bool) {
        if let expected, contains(expected) {
            try produce { _ throws(ImageStoreError) in }
            guard FileSystem.fileSize(path(expected)) == size else {
                throw .init(.invalidContent, "\(what): \(size) bytes, but the store's blob \(expected) has another size")
            }
            return (expected, false)
        }
        if let available = FileSystem.capacity(ingestDirectory)?.available, available - ImageStore.diskReserve < size {
            throw .init(.storage, "\(what) needs \(size) bytes but only \(available) are free in \(root) (disk full; \(ImageStore.diskReserve) bytes are kept free)")
        }
        var file: Int32 = -1
        var temporary = ""
        for attempt in 0..<100 {
            temporary = "\(ingestDirectory)/import-\(getpid())-\(UInt32.random(in: 0...UInt32.max))-\(attempt).partial"
            file = open(temporary, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if file >= 0 || errno != EEXIST { break }
        }
        guard file >= 0 else { throw FileSystem.error("open", temporary) }
        defer { close(file) }
        // prune leaves locked ingest files alone.
        _ = flock(file, LOCK_EX)
        var committed = false
        defer { if !committed { unlink(temporary) } }
        var hasher = DigestHasher(algorithm: expected?.algorithm ?? "sha256")
        var written: Int64 = 0
        try produce { (raw) throws(ImageStoreError) in
            hasher.update(raw)
            try FileSystem.writeAll(file, raw, path: temporary)
            written += Int64(raw.count)
        }
        guard written == size else { throw .init(.invalidContent, "\(what): \(written) of \(size) bytes (truncated)") }
        let digest = hasher.finalize()
        if let expected, expected != digest {
            throw .init(.invalidContent, "\(what): content has digest \(digest), not the \(expected) its name claims")
        }
        if contains(digest) { return (digest, false) }
        guard fsync(file) == 0 else { throw FileSystem.error("fsync", temporary) }
        try commit(temporary, digest)
        committed = true
        return (digest, true)
    }

    /// Opens and locks the partial file; another process pulling the same blob holds the lock
    /// until it is done. A file that was renamed away (committed) while we waited is not ours
    /// to continue: open the path again.
    private func lockPartial(_ partial: String) throws(ImageStoreError) -> Int32 {
        while true {
            let file = open(partial, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            guard file >= 0 else { throw FileSystem.error("open", partial) }
            guard SystemCall.retrying({ flock(file, LOCK_EX) }) == 0 else {
                let code = errno
                close(file)
                throw FileSystem.error("flock", partial, code)
            }
            var held = stat(), current = stat()
            if fstat(file, &held) == 0, stat(partial, &current) == 0, held.st_ino == current.st_ino, held.st_dev == current.st_dev {
                return file
            }
            close(file)
        }
    }

    private func hashExisting(_ file: Int32, length: Int64, into hasher: inout DigestHasher, path: String) throws(ImageStoreError) {
        var remaining = length
        var chunk = [UInt8](repeating: 0, count: 65536)
        var offset: Int64 = 0
        while remaining > 0 {
            let count = SystemCall.retrying { chunk.withUnsafeMutableBytes { pread(file, $0.baseAddress, min($0.count, Int(remaining)), off_t(offset)) } }
            if count < 0 { throw FileSystem.error("read", path) }
            if count == 0 { break }
            chunk.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[..<count])) }
            remaining -= Int64(count)
            offset += Int64(count)
        }
    }
}
