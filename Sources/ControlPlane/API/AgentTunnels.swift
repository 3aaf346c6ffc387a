#if canImport(Glibc)
import Glibc
#endif
import HTTPClientCore
import HTTPServing
import Synchronization

/// The tunnels agents keep to this server, one per node (a newer one replaces an older: the
/// board reconnected before this side noticed the old connection died).
final class AgentTunnels: Sendable {
    private let tunnels = Mutex<[String: TunnelMux]>([:])

    /// Adds the node's tunnel; returns the one it replaces.
    func register(_ node: String, _ mux: TunnelMux) -> TunnelMux? {
        tunnels.withLock { tunnels in
            defer { tunnels[node] = mux }
            return tunnels[node]
        }
    }

    /// Removes the node's tunnel if it is still `mux`.
    func unregister(_ node: String, _ mux: TunnelMux) {
        tunnels.withLock { tunnels in
            if tunnels[node] === mux { tunnels[node] = nil }
        }
    }

    func tunnel(_ node: String) -> TunnelMux? {
        tunnels.withLock { $0[node] }
    }

    /// Connections to the node's agent endpoint through its tunnel, or nil without one: each
    /// dial opens a stream, which the agent connects to its endpoint, and hands back the end of
    /// a local socket pair whose other end is copied to and from the stream.
    func dialer(for node: String) -> StreamDialer? {
        guard let mux = tunnel(node) else { return nil }
        return {
            let stream = try await mux.open()
            do {
                let (local, descriptor) = try await TunnelPump.socketPair()
                guard mux.spawn({ await TunnelPump.splice(stream, local) }) else {
                    local.close()
                    close(descriptor)
                    throw TunnelStream.Reset(description: "the tunnel ended")
                }
                return descriptor
            } catch {
                stream.reset("the server could not make a local socket: \(error)")
                throw error
            }
        }
    }
}
