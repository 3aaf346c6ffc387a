#if canImport(Glibc)
    import Glibc
#endif
import Foundation
import IotkubeTestSupport
@testable import SystemSupport
import Testing

/// Directory listing without Foundation, as the agent does it.
@Suite(.ownThread) struct FileTreeTests {
    /// Nests `depth` directories named "d" below `base` (through descriptors: the path would be
    /// longer than PATH_MAX), as a container can in its emptyDir.
    static func nest(_ base: String, depth: Int) throws {
        var parent = open(base, O_RDONLY | O_DIRECTORY)
        for _ in 0..<depth {
            #expect(mkdirat(parent, "d", 0o755) == 0)
            let child = openat(parent, "d", O_RDONLY | O_DIRECTORY)
            close(parent)
            parent = child
        }
        #expect(openat(parent, "leaf", O_CREAT | O_WRONLY, 0o644) >= 0)
        close(parent)
    }

    /// Removal takes a deep tree apart without recursion, and refuses (instead of overflowing
    /// its stack, or silently stopping at PATH_MAX as before) one deeper than it handles.
    @Test func deepTreesAreRemovedOrRefusedWithoutRecursion() throws {
        let base = NSTemporaryDirectory() + "iotkube-deep-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: base + "/ok", withIntermediateDirectories: true)
        try Self.nest(base + "/ok", depth: 3000)
        try FileTree.remove(base + "/ok")
        #expect(!FileTree.exists(base + "/ok"), "3000 levels removed")
        try FileManager.default.createDirectory(atPath: base + "/deep", withIntermediateDirectories: true)
        try Self.nest(base + "/deep", depth: DirectoryHandle.maximumDepth + 10)
        #expect { try FileTree.remove(base + "/deep") } throws: { "\($0)".contains("deeper than \(DirectoryHandle.maximumDepth) levels") }
    }

    /// Subdirectories are told by the entries' types: files, symlinks to directories and
    /// FIFOs are not directories; on a file system that reports no types (here: none needed,
    /// ext4 and tmpfs report them) the same answer comes from a stat of each entry.
    @Test func subdirectoriesAreTheDirectoriesOnly() throws {
        let base = NSTemporaryDirectory() + "iotkube-subdirs-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }
        for name in ["b", "a", "c/inner"] { try FileManager.default.createDirectory(atPath: base + "/" + name, withIntermediateDirectories: true) }
        #expect(FileManager.default.createFile(atPath: base + "/file", contents: Data("x".utf8)))
        #expect(symlink(base + "/a", base + "/link") == 0)
        #expect(mkfifo(base + "/fifo", 0o600) == 0)
        #expect(FileTree.subdirectories(base) == ["a", "b", "c"])
        #expect(FileTree.subdirectories(base + "/missing") == [])
        // The same answer as a stat of each entry, here and in a cgroup hierarchy (its control
        // files left out, its child cgroups found; on this host's hybrid layout the controller
        // aliases are symlinks).
        func statted(_ path: String) -> [String] {
            FileTree.list(path).filter { name in
                var info = stat()
                return lstat(path + "/" + name, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
            }
        }
        for path in [base, "/sys/fs/cgroup", "/sys/fs/cgroup/memory"] where FileTree.isDirectory(path) {
            #expect(FileTree.subdirectories(path) == statted(path), "\(path)")
        }
    }

    /// A mount inside a tree being removed is refused, never emptied.
    @Test(.enabled(if: getuid() == 0, "needs root (bind mounts)"))
    func aMountInsideATreeIsNotEmptied() throws {
        let base = NSTemporaryDirectory() + "iotkube-mounted-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: base + "/host", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: base + "/pod/volume", withIntermediateDirectories: true)
        try "kept".write(toFile: base + "/host/file", atomically: true, encoding: .utf8)
        #expect(mount(base + "/host", base + "/pod/volume", nil, UInt(MS_BIND), nil) == 0)
        defer { umount2(base + "/pod/volume", Int32(MNT_DETACH)) }
        #expect { try FileTree.remove(base + "/pod") } throws: { "\($0)".contains("a mount point") }
        #expect(try String(contentsOfFile: base + "/host/file", encoding: .utf8) == "kept", "a same-file-system bind mount is told apart by its mount id")
    }

    /// readdir packs entries as tight as their names: the last one in its buffer may end a few
    /// bytes before an unmapped page. Reading its name must stop at the name's end (copying the
    /// whole 256-byte field faults here).
    @Test func anEntryAtTheEndOfAPageIsReadInPlace() throws {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let memory = try #require(mmap(nil, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))
        #expect(memory != MAP_FAILED)
        defer { munmap(memory, 2 * page) }
        #expect(mprotect(memory + page, page, PROT_NONE) == 0)
        let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
        let entryStart = (page - 8 - nameOffset) & ~7
        let entry = (memory + entryStart).bindMemory(to: dirent.self, capacity: 1)
        let name = memory + entryStart + nameOffset
        for (index, byte) in "1359".utf8.enumerated() { name.storeBytes(of: byte, toByteOffset: index, as: UInt8.self) }
        name.storeBytes(of: 0, toByteOffset: 4, as: UInt8.self)
        #expect(FileTree.entryName(entry) == "1359")
    }

    @Test func listingIsSortedWithoutDots() throws {
        let directory = FileManager.default.temporaryDirectory.path + "/filetree-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for number in (1...300).reversed() { FileManager.default.createFile(atPath: "\(directory)/\(number)", contents: nil) }
        let names = FileTree.list(directory)
        #expect(names.count == 300)
        #expect(names == (1...300).map(String.init).sorted())
        #expect(FileTree.list(directory + "/missing").isEmpty)
    }
}
