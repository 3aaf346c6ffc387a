#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import ArgumentParser
import KubeModel
import SystemSupport

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
        let bytes: [UInt8]
        do {
            bytes = try SystemCall.readAll(descriptor, path: path, limit: limit, chunkSize: 1024)
        } catch where error.code == EFBIG {
            throw ValidationError("--token-file \(path): longer than \(limit) bytes, not a token")
        } catch {
            throw ValidationError("--token-file \(path): \(String(cString: strerror(error.code)))")
        }
        let line = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true).first ?? []
        let token = String(decoding: line, as: UTF8.self).trimmingWhitespace()
        guard !token.isEmpty else { throw ValidationError("--token-file \(path): no token in it") }
        return token
    }
}

