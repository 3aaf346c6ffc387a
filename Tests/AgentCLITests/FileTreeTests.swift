#if canImport(Glibc)
    import Glibc
#endif
import Foundation
@testable import SystemSupport
import Testing

/// Directory listing without Foundation, as the agent does it.
@Suite struct FileTreeTests {
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
