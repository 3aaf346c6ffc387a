import Foundation
import OCI
import Runtime
import Testing

/// The compiled-filter cache shared by every container of one agent.
struct SeccompCacheTests {
    /// Containers of one agent (one process) that start together compile the same profile at
    /// the same time: each must get the cached filter, none an error from another's rename.
    @Test func containersStartingTogetherAllGetTheCachedFilter() async throws {
        let directory = NSTemporaryDirectory() + "seccomp-cache-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let profile = RuntimeDefaultSeccomp.profile()
        let failures = await withTaskGroup(of: String?.self) { group in
            for _ in 0..<16 {
                group.addTask {
                    await Task.detached {
                        do { _ = try SeccompFilter.compiled(profile, cacheDirectory: directory); return nil } catch { return "\(error)" }
                    }.value
                }
            }
            var failures: [String] = []
            for await failure in group { if let failure { failures.append(failure) } }
            return failures
        }
        #expect(failures.isEmpty, "\(failures)")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory)
        #expect(files.count == 1 && files[0].hasSuffix(".bpf"), "\(files)")
    }
}
