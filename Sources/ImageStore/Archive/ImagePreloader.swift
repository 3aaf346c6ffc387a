#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import KubeCoding
import OCI
import SystemSupport

/// The pre-load directory: image archives put on the board's storage (say, on the SD card
/// before it first boots) are imported and pinned, so pods run from them without a registry.
/// A file is imported again only when it changes (size, modification time or inode) or when an
/// image it brought is gone from the store; a file that failed is tried again once it changes.
/// When a file goes, its images are unpinned (garbage collection may then take them).
public struct ImagePreloader: Sendable {
    public let store: ImageStore
    public let directory: String

    public init(store: ImageStore, directory: String) {
        self.store = store
        self.directory = directory
    }

    /// What one archive file was when it was last imported (or failed to be).
    struct FileState: Codable, Equatable {
        var stamp: String
        /// The images it brought; empty when it failed.
        var images: [Digest]
        var error: String?
    }

    struct State: Codable {
        var version = 1
        var files: [String: FileState] = [:]
    }

    var statePath: String { store.root + "/preload.json" }

    /// What one pass did, file by file.
    public enum Outcome: Sendable, Equatable {
        case imported(file: String, names: [String])
        case unchanged(file: String)
        case failed(file: String, error: String)
        /// A file that failed before and has not changed since.
        case stillFailing(file: String)
        case removed(file: String)
    }

    /// Archive files by the names they end with (their content decides the format).
    static let suffixes = [".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.zstd", ".oci", ".docker"]

    /// Imports new and changed archives and unpins the images of removed ones.
    public func run(progress: (@Sendable (String) -> Void)? = nil) async -> [Outcome] {
        var state = loadState()
        let before = state.files
        var outcomes: [Outcome] = []
        var present: Set<String> = []
        let stored = Set(((try? store.images()) ?? []).map(\.id))
        for name in FileTree.list(directory).sorted() where Self.suffixes.contains(where: { name.hasSuffix($0) }) && !name.hasPrefix(".") {
            let path = directory + "/" + name
            var info = stat()
            // Only regular files; a symlink is not followed.
            guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            present.insert(name)
            let stamp = "\(info.st_dev):\(info.st_ino):\(info.st_size):\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
            if let previous = state.files[name], previous.stamp == stamp {
                if previous.error != nil {
                    outcomes.append(.stillFailing(file: name))
                    continue
                }
                if !previous.images.isEmpty && previous.images.allSatisfy(stored.contains) {
                    outcomes.append(.unchanged(file: name))
                    continue
                }
            }
            do {
                let report = try await store.importArchive(path, pin: true, progress: progress)
                state.files[name] = FileState(stamp: stamp, images: report.images.map(\.result.image.id), error: nil)
                outcomes.append(.imported(file: name, names: report.images.flatMap(\.names)))
            } catch {
                let message = (error as? ImageStoreError)?.description ?? "\(error)"
                state.files[name] = FileState(stamp: stamp, images: [], error: message)
                outcomes.append(.failed(file: name, error: message))
            }
        }
        for name in state.files.keys.sorted() where !present.contains(name) {
            state.files[name] = nil
            outcomes.append(.removed(file: name))
        }
        // Pinned stays what some present file brought.
        let pinned = Set(state.files.values.flatMap(\.images))
        let unpinned = Set(before.values.flatMap(\.images)).subtracting(pinned)
        if !unpinned.isEmpty { try? store.setPinned(unpinned, false) }
        if state.files != before { saveState(state) }
        return outcomes
    }

    func loadState() -> State {
        guard let bytes = try? AtomicFile.read(statePath),
              let state = try? KubeJSON.decode(State.self, from: bytes, validation: .discard) else { return State() }
        return state
    }

    func saveState(_ state: State) {
        guard let bytes = try? KubeJSON.encode(state, pretty: true) else { return }
        try? AtomicFile.write(bytes, to: statePath, mode: 0o600)
    }
}

extension ImageStore {
    /// Pins or unpins images (garbage collection and `prune` leave pinned ones alone).
    public func setPinned(_ ids: Set<Digest>, _ pinned: Bool) throws(ImageStoreError) {
        try update { (database) throws(ImageStoreError) in
            for index in database.images.indices where ids.contains(database.images[index].id) {
                database.images[index].pinned = pinned ? true : nil
            }
        }
    }
}
