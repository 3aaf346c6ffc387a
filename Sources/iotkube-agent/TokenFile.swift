#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import ArgumentParser
import KubeModel

/// Reads a join or bootstrap token from a file or standard input (`-`), so that it never
/// appears on a command line, where every local user can read it (kubeadm takes it from a
/// configuration file for the same reason).
enum TokenFile {
    /// A token is a line; anything past this is not one.
    static let limit = 4096

    /// The file's first line, trimmed; refused when empty or too long.
    static func token(from path: String) throws -> String {
        let descriptor = path == "-" ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)
        guard descriptor >= 0 else { throw ValidationError("--token-file \(path): \(String(cString: strerror(errno)))") }
        defer { if descriptor != STDIN_FILENO { close(descriptor) } }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1024)
        while bytes.count <= limit {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw ValidationError("--token-file \(path): \(String(cString: strerror(errno)))") }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[..<count])
        }
        guard bytes.count <= limit else { throw ValidationError("--token-file \(path): longer than \(limit) bytes, not a token") }
        let line = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).first ?? []
        let token = String(decoding: line, as: UTF8.self).trimmingWhitespace()
        guard !token.isEmpty else { throw ValidationError("--token-file \(path): no token in it") }
        return token
    }
}

