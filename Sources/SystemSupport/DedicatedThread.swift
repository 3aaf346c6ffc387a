#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Runs blocking work on a thread of its own and awaits its result: for calls a container can
/// make last (an exec probe or hook whose command hangs), which must hold neither the
/// cooperative pool nor a shared thread pool that container starts need.
public enum DedicatedThread {
    private final class Job: @unchecked Sendable {
        let work: () -> Void
        init(_ work: @escaping () -> Void) { self.work = work }
    }

    public static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            let job = Unmanaged.passRetained(Job { continuation.resume(returning: body()) })
            var attributes = pthread_attr_t()
            pthread_attr_init(&attributes)
            pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
            // 1 MiB, not the default 8: many of these at once must fit a 32-bit board's address space.
            pthread_attr_setstacksize(&attributes, 1 << 20)
            var thread = pthread_t()
            let created = pthread_create(&thread, &attributes, { raw in
                Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue().work()
                return nil
            }, job.toOpaque())
            pthread_attr_destroy(&attributes)
            if created != 0 {
                // No thread to be had (a process limit): run it here rather than not at all.
                job.takeRetainedValue().work()
            }
        }
    }
}
