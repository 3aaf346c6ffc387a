#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import SystemSupport

/// Reading and writing cgroup control files; errors name the file and the value.
enum CgroupFiles {
    static func write(_ path: String, _ value: String) throws(RuntimeError) {
        let descriptor = open(path, O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw RuntimeError("cgroup \(path): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        let bytes = Array(value.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
        guard written == bytes.count else { throw RuntimeError("cgroup \(path): writing \"\(value)\": \(String(cString: strerror(errno)))") }
    }

    static func read(_ path: String) -> String? { FileTree.readText(path) }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    static func makeDirectories(_ path: String) throws(RuntimeError) {
        do { try FileTree.makeDirectories(path) } catch { throw RuntimeError("cgroup \(error)") }
    }

    /// The cgroups directly below a cgroup directory.
    static func subdirectories(_ path: String) -> [String] {
        FileTree.subdirectories(path)
    }

    /// `key value` lines (memory.events, cpu.stat, memory.stat) as a dictionary.
    static func keyValues(_ path: String) -> [String: Int64] {
        var result: [String: Int64] = [:]
        for line in (read(path) ?? "").split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let value = Int64(parts[1]) { result[String(parts[0])] = value }
        }
        return result
    }

    /// The cgroups below `path`, deepest first (bounded: a container with a writable cgroup
    /// mount makes as many as it likes).
    static func descendants(_ path: String) -> [String] {
        var result: [String] = []
        func walk(_ directory: String, depth: Int) {
            guard depth < 32, result.count < 10_000 else { return }
            for name in subdirectories(directory) {
                walk(directory + "/" + name, depth: depth + 1)
                result.append(directory + "/" + name)
            }
        }
        walk(path, depth: 0)
        return result
    }

    /// Removes the cgroup and every cgroup below it, deepest first, with retries (up to 5 s)
    /// while the last processes are exiting.
    static func remove(_ path: String) {
        for _ in 0..<250 {
            for directory in descendants(path) { rmdir(directory) }
            if rmdir(path) == 0 || errno == ENOENT { return }
            usleep(20_000)
        }
    }

    /// Kills every process in the cgroup and below it (cgroup v1, or v2 without cgroup.kill).
    static func killTree(_ path: String) {
        for _ in 0..<3 {
            var found = false
            for directory in descendants(path) + [path] {
                for pid in (read(directory + "/cgroup.procs") ?? "").split(separator: "\n").compactMap({ pid_t($0) }) where pid > 0 {
                    found = true
                    Glibc.kill(pid, SIGKILL)
                }
            }
            if !found { return }
            usleep(10_000)
        }
    }
}
