/// Makes a client's connection instead of a TCP connect to the host and port: returns a
/// connected stream socket (one end of a tunnel stream, say), which the caller then owns.
public typealias StreamDialer = @Sendable () async throws -> CInt
