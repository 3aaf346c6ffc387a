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
/// A file is imported again only when it changes (size or modification time) or when an image
/// it brought is gone from the store. A file that failed is tried again when it changes and
/// once after each start of the agent; one whose import was cut short (the agent stopped or
/// crashed in it) three times is left until it changes. When a file goes, its images are
/// unpinned (garbage collection may then take them); a failed replacement keeps the old ones.
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
        /// The images it brought (kept pinned while the file stays).
        var images: [Digest]
        var error: String?
        /// Imports of this stamp begun and never finished.
        var interrupted: Int?
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
        /// Written to in the last seconds (perhaps still being copied): the next pass takes it.
        case settling(file: String)
        /// Not owned by this user, or writable by others: not imported.
        case refused(file: String, reason: String)
        case removed(file: String)
    }

    /// Archive files by the names they end with (their content decides the format).
    static let suffixes = [".tar", ".tar.gz", ".tgz", ".tar.zst", ".tar.zstd", ".oci", ".docker"]
    /// Imports cut short this often are not begun again until the file changes.
    static let interruptedLimit = 3
    /// A file modified this recently is left for the next pass.
    static let settleSeconds = 5

    /// Imports new and changed archives and unpins the images of removed ones. `afterStart`:
    /// the first pass of this process, which tries failed files again.
    public func run(afterStart: Bool = false, progress: (@Sendable (String) -> Void)? = nil) async -> [Outcome] {
        var info = stat()
        // A directory that is missing (a card not mounted yet) changes nothing.
        guard stat(directory, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { return [] }
        if let reason = Self.unsafe(info) {
            return [.refused(file: ".", reason: "the directory \(directory) \(reason)")]
        }
        var state = loadState()
        var outcomes: [Outcome] = []
        var present: Set<String> = []
        let stored = Set(((try? store.images()) ?? []).map(\.id))
        for name in FileTree.list(directory).sorted() where Self.suffixes.contains(where: { name.hasSuffix($0) }) && !name.hasPrefix(".") {
            let path = directory + "/" + name
            // Only regular files; a symlink is not followed.
            guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
            present.insert(name)
            if let reason = Self.unsafe(info) {
                outcomes.append(.refused(file: name, reason: reason))
                continue
            }
            let stamp = "\(info.st_size):\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
            let previous = state.files[name]
            if let previous, previous.stamp == stamp {
                if (previous.interrupted ?? 0) >= Self.interruptedLimit {
                    outcomes.append(.stillFailing(file: name))
                    continue
                }
                if previous.interrupted == nil && previous.error != nil && !afterStart {
                    outcomes.append(.stillFailing(file: name))
                    continue
                }
                if previous.interrupted == nil && previous.error == nil && !previous.images.isEmpty && previous.images.allSatisfy(stored.contains) {
                    outcomes.append(.unchanged(file: name))
                    continue
                }
            }
            if abs(Int(Self.wallClockSeconds()) - Int(info.st_mtim.tv_sec)) < Self.settleSeconds {
                outcomes.append(.settling(file: name))
                continue
            }
            // Marked before it begins: an import that kills the agent is not begun forever.
            let attempts = previous?.stamp == stamp ? (previous?.interrupted ?? 0) + 1 : 1
            state.files[name] = FileState(stamp: stamp, images: previous?.images ?? [], error: previous?.error, interrupted: attempts)
            saveState(state)
            do {
                let report = try await store.importArchive(path, pin: true, progress: progress)
                let brought = report.images.map(\.result.image.id)
                let error = report.failures.isEmpty ? nil : report.failures.joined(separator: "; ")
                // A failed replacement keeps what the file brought before pinned.
                state.files[name] = FileState(stamp: stamp, images: brought.isEmpty ? previous?.images ?? [] : brought, error: error)
                if !brought.isEmpty { outcomes.append(.imported(file: name, names: report.images.flatMap(\.names))) }
                if let error { outcomes.append(.failed(file: name, error: error)) }
            } catch {
                let message = (error as? ImageStoreError)?.description ?? "\(error)"
                state.files[name] = FileState(stamp: stamp, images: previous?.images ?? [], error: message)
                outcomes.append(.failed(file: name, error: message))
            }
            saveState(state)
        }
        let before = state.files
        for name in state.files.keys.sorted() where !present.contains(name) {
            state.files[name] = nil
            outcomes.append(.removed(file: name))
        }
        // Pinned stays what some present file brought.
        let pinned = Set(state.files.values.flatMap(\.images))
        let unpinned = Set(before.values.flatMap(\.images)).subtracting(pinned)
        do {
            if !unpinned.isEmpty { try store.setPinned(unpinned, false) }
            if state.files != before { saveState(state) }
        } catch {
            // Tried again on the next pass: the removed files stay in the state until then.
            outcomes.append(.failed(file: ".", error: "unpinning the images of removed archives: \(error)"))
        }
        return outcomes
    }

    /// Why a file or directory may not be trusted: owned by another user, or writable by others.
    static func unsafe(_ info: stat) -> String? {
        if info.st_uid != geteuid() { return "is owned by uid \(info.st_uid), not \(geteuid())" }
        if info.st_mode & (S_IWGRP | S_IWOTH) != 0 { return "is writable by group or others (mode \(String(info.st_mode & 0o7777, radix: 8)))" }
        return nil
    }

    static func wallClockSeconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec)
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
