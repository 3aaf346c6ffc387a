#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import NIOCore
import NIOPosix

/// Copies between a tunnel stream and a local connection, both ways, until both ends are done.
/// An end of bytes passes through as an end of bytes (a half-close where the connection has
/// one); a failure on either side ends both at once.
public enum TunnelPump {
    public static func splice(_ stream: TunnelStream, _ connection: ByteStreamConnection) async {
        // A local connection that closes whole (not a half-close) takes the stream with it,
        // even while the peer sends nothing.
        connection.closed.whenComplete { _ in stream.reset("the local connection closed") }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // Local → tunnel.
                do {
                    while let buffer = try await connection.read() {
                        try await stream.write(Array(buffer.readableBytesView))
                    }
                    await stream.closeWrite()
                } catch {
                    stream.reset("the local connection failed: \(error)")
                    connection.close()
                }
            }
            group.addTask {
                // Tunnel → local.
                do {
                    while let bytes = try await stream.read() {
                        try await connection.write(ByteBuffer(bytes: bytes))
                    }
                    connection.closeOutput()
                } catch {
                    stream.reset("the local connection failed: \(error)")
                    connection.close()
                }
            }
        }
        connection.close()
        stream.finish()
    }

    /// A connected pair of local stream sockets: the first end, a ``ByteStreamConnection`` that
    /// `splice` copies to a tunnel stream; the second, a descriptor a client bootstrap connects
    /// with (it owns it then).
    public static func socketPair() async throws -> (ByteStreamConnection, CInt) {
        var descriptors: [CInt] = [-1, -1]
        guard socketpair(AF_UNIX, CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue), 0, &descriptors) == 0 else {
            throw IOError(errnoCode: errno, reason: "socketpair")
        }
        do {
            let connection = try await ByteStreamConnection.wrap(descriptor: descriptors[0])
            return (connection, descriptors[1])
        } catch {
            close(descriptors[1])
            throw error
        }
    }
}
