#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import KubeCoding
import OCI
import Synchronization
import SystemSupport

/// The agent's image store under `<stateDir>/images`: verified blobs, unpacked layers (overlay
/// lowerdirs, or one flattened rootfs per image where overlayfs cannot be used) and `images.json`.
/// Several processes may use one store (the daemon and `iotkube-agent images`): metadata changes
/// hold a file lock, downloads and unpacks of the same content wait for each other.
public final class ImageStore: Sendable {
    public let root: String
    public let unpackMode: UnpackMode
    public let policy: UnpackPolicy
    let blobs: BlobStore
    /// A layer may expand to at most this many times its compressed size…
    public static let expansionRatioLimit: Int64 = 100
    /// …but is always allowed this much (small layers of zeros compress very well).
    public static let expansionFloor: Int64 = 256 << 20
    /// Free space left untouched by unpacking.
    public static let diskReserve: Int64 = 32 << 20

    /// Pulls in flight, each with the number of callers waiting for it.
    private let pulls = Mutex<[String: (task: Task<PullResult, any Error>, waiters: Int)]>([:])

    public init(stateDirectory: String, unpackMode: UnpackMode? = nil, policy: UnpackPolicy = UnpackPolicy()) throws(ImageStoreError) {
        root = stateDirectory + "/images"
        self.unpackMode = unpackMode ?? Self.defaultUnpackMode()
        self.policy = policy
        blobs = BlobStore(root: root)
        try FileSystem.makeDirectories(root)
        try blobs.prepare()
        for directory in ["layers", "rootfs", "staging"] { try FileSystem.makeDirectories("\(root)/\(directory)") }
    }

    /// overlay when running as root on a kernel with overlayfs, flattened otherwise.
    public static func defaultUnpackMode() -> UnpackMode {
        guard geteuid() == 0, let filesystems = HostPlatform.readSmallFile("/proc/filesystems") else { return .flattened }
        return filesystems.split(separator: "\n").contains { $0.hasSuffix("\toverlay") } ? .overlay : .flattened
    }

    var databasePath: String { root + "/images.json" }
    var lockPath: String { root + "/lock" }
    func layerPath(_ diffID: Digest) -> String { "\(root)/layers/\(diffID.hex)" }
    func rootfsPath(_ id: Digest) -> String { "\(root)/rootfs/\(id.hex)" }

    // MARK: metadata

    func loadDatabase() throws(ImageStoreError) -> ImageDatabase {
        let bytes: [UInt8]?
        do { bytes = try AtomicFile.read(databasePath) } catch { throw .init(.storage, "\(error)") }
        guard let bytes else { return ImageDatabase() }
        do { return try KubeJSON.decode(ImageDatabase.self, from: bytes, validation: .discard) } catch {
            throw .init(.storage, "\(databasePath) is corrupt: \(error)")
        }
    }

    func saveDatabase(_ database: ImageDatabase) throws(ImageStoreError) {
        do { try AtomicFile.write(try KubeJSON.encode(database, pretty: true), to: databasePath, mode: 0o600) } catch let error as FileError {
            throw FileSystem.error(error.operation, error.path, error.code)
        } catch {
            throw .init(.storage, "writing \(databasePath): \(error)")
        }
    }

    /// Reads, changes and writes the metadata under the store lock; writes only when changed.
    func update<T>(_ change: (inout ImageDatabase) throws(ImageStoreError) -> T) throws(ImageStoreError) -> T {
        try FileSystem.withLock(lockPath) { () throws(ImageStoreError) -> T in
            var database = try loadDatabase()
            let before = try? KubeJSON.encode(database)
            let result = try change(&database)
            if (try? KubeJSON.encode(database)) != before { try saveDatabase(database) }
            return result
        }
    }

    /// The images recorded under a state directory, read without creating or locking anything
    /// (the node status lists them); none when there is no store yet.
    /// The heartbeat asks on every beat: the file is decoded again only when it changed.
    public static func records(stateDirectory: String) -> [ImageRecord] {
        let path = stateDirectory + "/images/images.json"
        var info = stat()
        guard stat(path, &info) == 0 else { return [] }
        let stamp = "\(info.st_ino):\(info.st_size):\(info.st_mtim.tv_sec):\(info.st_mtim.tv_nsec)"
        if let cached = recordCache.withLock({ $0[path] }), cached.stamp == stamp { return cached.images }
        guard let bytes = try? AtomicFile.read(path),
              let database = try? KubeJSON.decode(ImageDatabase.self, from: bytes, validation: .discard) else { return [] }
        recordCache.withLock { $0[path] = (stamp, database.images) }
        return database.images
    }

    private static let recordCache = Mutex<[String: (stamp: String, images: [ImageRecord])]>([:])

    /// Every image, newest pull first.
    public func images() throws(ImageStoreError) -> [ImageRecord] {
        try loadDatabase().images.sorted { $0.pulledAt > $1.pulledAt }
    }

    /// The image a reference names locally: a tag (`busybox:1`, normalised), `name@digest`
    /// (a repo digest or the manifest digest), or an image ID (full or a unique prefix of 12+).
    public func lookup(_ text: String) throws(ImageStoreError) -> ImageRecord? {
        try Self.find(text, in: loadDatabase().images)
    }

    static func find(_ text: String, in images: [ImageRecord]) throws(ImageStoreError) -> ImageRecord? {
        let bareHex = text.hasPrefix("sha256:") ? String(text.dropFirst(7)) : text
        if bareHex.utf8.count >= 12, bareHex.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) {
            let matches = images.filter { $0.id.hex.hasPrefix(bareHex) }
            if matches.count == 1 { return matches[0] }
        }
        let reference = try ImageReference(parsing: text)
        let matches: [ImageRecord]
        if let digest = reference.digest {
            matches = images.filter { image in
                image.repoDigests.contains(reference.pinned(to: digest)) || (image.manifestDigest == digest && image.repoDigests.contains { $0.hasPrefix(reference.name + "@") })
            }
        } else {
            matches = images.filter { $0.names.contains(reference.description) }
        }
        // A multi-platform tag may be present for several platforms: this machine's first.
        let host = HostPlatform.current()
        return matches.first { (try? Platform(parsing: $0.platform)).map { host.score($0) != nil } ?? false } ?? matches.first
    }

    /// Where the runtime finds an image's files: layer directories bottom first (overlay
    /// lowerdirs are given top first) or one flattened directory.
    public func filesystem(of image: ImageRecord) -> ImageFilesystem {
        switch image.unpackMode {
        case .overlay: return .layers(image.layers.map(layerPath))
        case .flattened: return .directory(rootfsPath(image.id))
        }
    }

    /// The image's configuration (Entrypoint, Cmd, Env, WorkingDir, User).
    public func configuration(of image: ImageRecord) throws(ImageStoreError) -> ImageConfiguration {
        do { return try KubeJSON.decode(ImageConfiguration.self, from: blobs.read(image.id), validation: .discard) } catch let error as ImageStoreError {
            throw error
        } catch {
            throw .init(.invalidContent, "image config \(image.id): \(error)")
        }
    }

    /// Marks an image as used by `user` (a pod UID): it is then kept by GC and `rm`.
    public func markUsed(_ id: Digest, by user: String) throws(ImageStoreError) {
        try update { (database) throws(ImageStoreError) in
            guard let index = database.images.firstIndex(where: { $0.id == id }) else {
                throw .init(.notFound, "image \(id.short) is not in the store")
            }
            if !database.images[index].users.contains(user) { database.images[index].users.append(user) }
            database.images[index].lastUsedAt = Self.now()
        }
    }

    /// Drops `user`'s claim on an image.
    public func release(_ id: Digest, by user: String) throws(ImageStoreError) {
        try update { (database) throws(ImageStoreError) in
            guard let index = database.images.firstIndex(where: { $0.id == id }) else { return }
            database.images[index].users.removeAll { $0 == user }
            database.images[index].lastUsedAt = Self.now()
        }
    }

    static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Int64(time.tv_sec)
    }

    // MARK: pulling (deduplicated)

    /// Pulls `reference` for `platform` (default: this machine). Concurrent pulls of the same
    /// reference in this process share one download. A caller that is cancelled stops waiting
    /// at once; when no caller waits any more the download stops (what arrived stays for a
    /// later pull) and the next caller starts a new one.
    public func pull(_ reference: ImageReference, platform: Platform? = nil, registry: RegistryConfiguration,
                     progress: (@Sendable (String) -> Void)? = nil) async throws -> PullResult {
        let target = platform ?? HostPlatform.current()
        let key = "\(reference)|\(target)"
        let task = pulls.withLock { running -> Task<PullResult, any Error> in
            if let existing = running[key] {
                running[key]?.waiters += 1
                return existing.task
            }
            let puller = ImagePuller(store: self, client: RegistryClient(configuration: registry), platform: target, progress: progress)
            let task = Task { try await puller.pull(reference) }
            running[key] = (task, 1)
            return task
        }
        let waiter = PullWaiter()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                waiter.wait(continuation)
                Task {
                    let result = await task.result
                    if waiter.finish(result) { self.leave(key, task, cancellingWhenLast: false) }
                }
            }
        } onCancel: {
            if waiter.finish(.failure(CancellationError())) { self.leave(key, task, cancellingWhenLast: true) }
        }
    }

    /// One caller stops waiting for the pull of `key`; the last one out removes it (and
    /// cancels it when it is still running).
    private func leave(_ key: String, _ task: Task<PullResult, any Error>, cancellingWhenLast: Bool) {
        let last = pulls.withLock { running -> Bool in
            guard let entry = running[key], entry.task == task else { return false }
            if entry.waiters <= 1 {
                running[key] = nil
                return true
            }
            running[key]?.waiters -= 1
            return false
        }
        if last && cancellingWhenLast { task.cancel() }
    }
}

/// The files of an unpacked image.
public enum ImageFilesystem: Sendable, Hashable {
    /// Layer directories, bottom first.
    case layers([String])
    /// One directory holding the flattened image.
    case directory(String)
}

/// What a pull did.
public struct PullResult: Sendable {
    public var image: ImageRecord
    /// The digest the reference resolved to (the index digest for multi-arch images).
    public var resolvedDigest: Digest
    public var downloadedBytes: Int64 = 0
    public var reusedLayers = 0
    public var unpackedLayers = 0
    public var report = UnpackReport()
}
