import FoundationEssentials
import HTTPServing
import NIOCore
import Synchronization

/// Port-forward over a WebSocket as the kubelet serves it to clients that speak the channel
/// protocol (`v4.channel.k8s.io`, its base64 variant, or none), such as the Python and
/// JavaScript clients: one connection per port named in the query, port `i` on channels `2i`
/// (data, both ways) and `2i+1` (errors, to the client); each channel first carries the port as
/// two little-endian bytes. The session ends when every connection has ended or the client
/// closes.
struct WebSocketPortForward: Sendable {
    let socket: WebSocketStream
    let ports: [UInt16]
    /// `v4.base64.channel.k8s.io`: text messages, the channel as an ASCII digit, base64 payloads.
    let base64: Bool
    let podLabel: String
    let stallLimit: Duration
    let dial: PortForwardSession.Dialer

    /// The channel protocols served, in the kubelet's order of preference ("" is none).
    static let protocols = ["v4.channel.k8s.io", "v4.base64.channel.k8s.io"]
    /// At most this many ports per request (each holds a connection into the pod).
    static let maximumPorts = 16

    func run() async {
        let queues = ports.map { _ in ForwardQueue(limit: PortForwardSession.queueLimit) }
        let targets = Targets()
        for (index, port) in ports.enumerated() {
            let bytes = [UInt8(port & 0xFF), UInt8(port >> 8)]
            try? await send(channel: 2 * index, bytes)
            try? await send(channel: 2 * index + 1, bytes)
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await receive(queues, stalled: { index in
                    queues[index].close()
                    targets.state.withLock { $0.connections[index] }?.close()
                })
                // The client is gone: every connection ends (also one still being made).
                for queue in queues { queue.close() }
                let open = targets.state.withLock { targets in
                    targets.ended = true
                    return Array(targets.connections.values)
                }
                for target in open { target.close() }
            }
            await withTaskGroup(of: Void.self) { forwards in
                for (index, port) in ports.enumerated() {
                    forwards.addTask {
                        await forward(index: index, port: port, queue: queues[index], targets: targets)
                    }
                }
            }
            // Every connection ended: so does the session (the kubelet's handler returns).
            await socket.close()
        }
    }

    /// The connections into the pod by port index, and whether the client is gone.
    final class Targets: Sendable {
        struct State {
            var connections: [Int: ByteStreamConnection] = [:]
            var ended = false
        }
        let state = Mutex(State())
    }

    private func forward(index: Int, port: UInt16, queue: ForwardQueue, targets: Targets) async {
        let target: ByteStreamConnection
        switch await dial(port) {
        case .success(let connection): target = connection
        case .failure(let failure):
            queue.close()
            try? await send(channel: 2 * index + 1, Array("error forwarding port \(port) to pod \(podLabel): \(failure.message)".utf8))
            return
        }
        let ended = targets.state.withLock { targets in
            targets.connections[index] = target
            return targets.ended
        }
        if ended {
            target.close()
            return
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                while let bytes = await queue.pop() {
                    do { try await target.write(bytes) } catch { break }
                }
                queue.close()
                target.closeOutput()
            }
            while let buffer = try? await target.read() {
                do { try await send(channel: 2 * index, Array(buffer.readableBytesView)) } catch { break }
            }
            // The pod ended its side: nothing more goes to it either (the protocol has no half-close).
            queue.close()
            target.close()
        }
    }

    /// Client messages to the connections' queues until the client closes.
    private func receive(_ queues: [ForwardQueue], stalled: (Int) -> Void) async {
        do {
            while let message = try await socket.next() {
                guard let (channel, payload) = decode(message), channel % 2 == 0, channel / 2 < queues.count, !payload.isEmpty else { continue }
                if !(await queues[channel / 2].push(payload, waitingAtMost: stallLimit)) { stalled(channel / 2) }
            }
        } catch {
            // A broken WebSocket is the client going away.
        }
    }

    private func decode(_ message: WebSocketStream.Message) -> (Int, [UInt8])? {
        if base64 {
            // The channel as '0' + its number (past 9 the characters after '9').
            guard message.opcode == .text, let digit = message.payload.first, digit >= 0x30,
                  let data = Data(base64Encoded: Data(message.payload.dropFirst())) else { return nil }
            return (Int(digit - 0x30), Array(data))
        }
        guard message.opcode == .binary, let channel = message.payload.first else { return nil }
        return (Int(channel), Array(message.payload.dropFirst()))
    }

    private func send(channel: Int, _ bytes: [UInt8]) async throws {
        if base64 {
            try await socket.send(.text, [UInt8(0x30 + channel)] + Array(Data(bytes).base64EncodedString().utf8))
        } else {
            try await socket.send(.binary, [UInt8(channel)] + bytes)
        }
    }
}
