#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import SystemSupport

/// A hold on `<store>/content.lock`. Pulls and imports hold it shared while they bring in blobs
/// and layers that no image record names yet; a sweep of unreferenced files holds it
/// exclusively, so it never takes what an operation in flight (in this process or another) has
/// just written. Released when the value goes.
final class ContentLease: Sendable {
    private let descriptor: Int32

    /// nil when `wait` is false and the lease is held the other way.
    static func acquire(_ store: ImageStore, exclusive: Bool, wait: Bool) throws(ImageStoreError) -> ContentLease? {
        let path = store.root + "/content.lock"
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw FileSystem.error("open", path) }
        let operation = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB)
        guard SystemCall.retrying({ flock(descriptor, operation) }) == 0 else {
            let code = errno
            close(descriptor)
            if code == EWOULDBLOCK && !wait { return nil }
            throw FileSystem.error("flock", path, code)
        }
        return ContentLease(descriptor)
    }

    /// The shared lease for a pull or import, waited for without blocking a thread of the
    /// agent's small pool (a sweep of a large store on an SD card takes seconds).
    static func shared(_ store: ImageStore) async throws -> ContentLease {
        while true {
            if let lease = try acquire(store, exclusive: false, wait: false) { return lease }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    private init(_ descriptor: Int32) { self.descriptor = descriptor }

    deinit { close(descriptor) }
}
