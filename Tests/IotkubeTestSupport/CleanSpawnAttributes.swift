import CRuntime
import Foundation

/// Runs `body` with spawn attributes that start the child with no signal blocked and every
/// disposition at its default. Without them a child inherits the spawning thread's mask
/// (Foundation's threads block most signals) and what the test process ignores: a shell
/// whose SIGCHLD stays blocked never returns from `wait`.
func withCleanSpawnAttributes<T>(_ body: (inout posix_spawnattr_t) -> T) -> T {
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    iotkube_spawnattr_default_signals(&attributes)
    return body(&attributes)
}
