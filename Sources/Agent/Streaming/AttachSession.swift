#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CRuntime
import HTTPServing
import KubeModel
import NIOCore

/// One `kubectl attach` on the agent: the container's output as it comes and, for a container
/// with `stdin: true`, its stdin and terminal size, through the attach socket its monitor serves
/// (frames of a kind byte, a 4-byte big-endian length and the payload: '1' stdout, '2' stderr,
/// 'x' the container exited from the monitor; 'i' stdin, 'c' its end, 'r' a terminal size to
/// it). The session ends when the container exits (success, as the kubelet reports it) or the
/// client leaves; the container goes on either way.
struct AttachSession: CommandSession {
    /// The container's state directory (its `attach` socket inside).
    let stateDirectory: String
    let request: RemoteCommandRequest

    /// The largest stdin frame the monitor takes.
    static let maximumInput = 4096
    /// The largest output frame the monitor sends (a larger length is a broken stream).
    static let maximumOutput = 16384

    struct AttachFailure: Error, Sendable {
        var message: String
    }

    private enum Event: Sendable {
        case exited
        case dropped(String)
        case clientGone
        case closeWaitEnded
    }

    static func frame(_ kind: Character, _ payload: some Collection<UInt8> = [UInt8]()) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(kind.asciiValue ?? 0)
        buffer.writeInteger(UInt32(payload.count))
        buffer.writeBytes(payload)
        return buffer
    }

    func run(_ channel: any RemoteCommandChannel) async {
        await channel.begin()
        let socket = iotkube_attach_connect(stateDirectory)
        guard socket >= 0 else {
            let reason = errno == ENOENT || errno == ECONNREFUSED
                ? "the container does not serve attach (it was started by an older agent, or has exited)"
                : errno == EAGAIN ? "the container's monitor is busy; try again" : String(cString: strerror(errno))
            await channel.sendStatusAndClose(ExecSession.internalError("error attaching to container: \(reason)"))
            channel.abort()
            return
        }
        let connection: ByteStreamConnection
        do { connection = try await ByteStreamConnection.wrap(descriptor: socket) } catch {
            await channel.sendStatusAndClose(ExecSession.internalError("error attaching to container: \(error)"))
            channel.abort()
            return
        }
        let sendsOutput = request.stdout || request.tty, sendsErrors = request.stderr, tty = request.tty
        let stdin = request.stdin ? StdinSink(write: { buffer in
            var buffer = buffer
            while buffer.readableBytes > 0 {
                let chunk = buffer.readSlice(length: min(buffer.readableBytes, Self.maximumInput))!
                try await connection.write(Self.frame("i", chunk.readableBytesView))
            }
        }, finish: {
            try? await connection.write(Self.frame("c"))
        }) : nil
        await withTaskGroup(of: Event.self) { group in
            group.addTask {
                var pending = ByteBuffer()
                while let more = try? await connection.read() {
                    var more = more
                    pending.writeBuffer(&more)
                    while pending.readableBytes >= 5 {
                        let kind = pending.getInteger(at: pending.readerIndex, as: UInt8.self)!
                        let length = Int(pending.getInteger(at: pending.readerIndex + 1, as: UInt32.self)!)
                        guard length <= Self.maximumOutput else { return .dropped("the container's attach stream is broken") }
                        guard pending.readableBytes >= 5 + length else { break }
                        pending.moveReaderIndex(forwardBy: 5)
                        let bytes = pending.readBytes(length: length)!
                        do {
                            switch kind {
                            case UInt8(ascii: "1") where sendsOutput: try await channel.send(1, bytes)
                            // Without a stderr stream a terminal shows both.
                            case UInt8(ascii: "2") where sendsErrors: try await channel.send(2, bytes)
                            case UInt8(ascii: "2") where tty: try await channel.send(1, bytes)
                            case UInt8(ascii: "x"): return .exited
                            default: break
                            }
                        } catch {
                            return .clientGone
                        }
                    }
                    pending.discardReadBytes()
                }
                // Closed without the exit: the monitor dropped a client that fell behind.
                return .dropped("the attached stream fell behind the container's output and was dropped; attach again")
            }
            group.addTask {
                await channel.receive(stdin: stdin, resize: { columns, rows in
                    var size = ByteBuffer()
                    size.writeInteger(columns)
                    size.writeInteger(rows)
                    try? await connection.write(Self.frame("r", size.readableBytesView))
                })
                return .clientGone
            }
            var closing = false
            while let event = await group.next() {
                switch event {
                case .exited, .dropped:
                    guard !closing else { continue }
                    closing = true
                    if case .dropped(let reason) = event {
                        await channel.sendStatusAndClose(ExecSession.internalError(reason))
                    } else {
                        await channel.sendStatusAndClose(["metadata": [:], "status": "Success"])
                    }
                    connection.close()
                    group.addTask {
                        try? await Task.sleep(for: .seconds(5))
                        return .closeWaitEnded
                    }
                case .clientGone, .closeWaitEnded:
                    // The monitor sees the socket close (stdinOnce then closes the container's stdin).
                    closing = true
                    connection.close()
                    channel.abort()
                    group.cancelAll()
                }
            }
        }
        connection.close()
    }
}
