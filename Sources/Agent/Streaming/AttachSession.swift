#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import CRuntime
import HTTPServing
import KubeModel
import NIOCore
import Runtime
import SystemSupport

/// One `kubectl attach` on the agent: the container's output as it comes and, for a container
/// with `stdin: true`, its stdin, through the attach socket its monitor serves (SOCK_SEQPACKET,
/// one kind byte per message: '1' stdout, '2' stderr from the monitor; 'i' stdin, 'c' its end,
/// 'r' a terminal size to it). The session ends when the container exits (success, as the kubelet reports it) or
/// the client leaves; the container goes on either way.
struct AttachSession: CommandSession {
    /// The container's state directory (its `attach` socket inside).
    let stateDirectory: String
    let request: RemoteCommandRequest

    /// The largest message the monitor takes (its buffer: a kind byte and 64 KiB).
    static let maximumInput = 64 << 10

    private enum Event: Sendable {
        case outputEnded
        case clientGone
        case closeWaitEnded
    }

    /// Connects to the container's attach socket; nil with the reason when it cannot be reached.
    static func connect(stateDirectory: String) -> Result<CInt, AttachFailure> {
        let socket = iotkube_attach_connect(stateDirectory)
        guard socket >= 0 else {
            let reason = errno == ENOENT || errno == ECONNREFUSED
                ? "the container does not serve attach (it was started by an older agent, or has exited)" : String(cString: strerror(errno))
            return .failure(AttachFailure(message: reason))
        }
        return .success(socket)
    }

    struct AttachFailure: Error, Sendable {
        var message: String
    }

    func run(_ channel: any RemoteCommandChannel) async {
        await channel.begin()
        let socket: CInt
        switch await DedicatedThread.run({ [stateDirectory] in Self.connect(stateDirectory: stateDirectory) }) {
        case .success(let descriptor): socket = descriptor
        case .failure(let failure):
            await channel.sendStatusAndClose(ExecSession.internalError("error attaching to container: \(failure.message)"))
            channel.abort()
            return
        }
        let descriptor = AttachDescriptor(socket)
        let sendsOutput = request.stdout || request.tty, sendsErrors = request.stderr
        let stdin = request.stdin ? StdinSink(write: { buffer in
            var buffer = buffer
            while buffer.readableBytes > 0 {
                let chunk = buffer.readBytes(length: min(buffer.readableBytes, Self.maximumInput)) ?? []
                guard await DedicatedThread.run({ descriptor.send([UInt8(ascii: "i")] + chunk) }) else { throw AttachFailure(message: "the container's attach socket closed") }
            }
        }, finish: {
            _ = descriptor.send([UInt8(ascii: "c")], waiting: false)
        }) : nil
        await withTaskGroup(of: Event.self) { group in
            group.addTask {
                while let message = await DedicatedThread.run({ descriptor.receive() }) {
                    guard let kind = message.first else { continue }
                    let bytes = Array(message.dropFirst())
                    do {
                        if kind == UInt8(ascii: "1"), sendsOutput { try await channel.send(1, bytes) }
                        if kind == UInt8(ascii: "2") {
                            // Without a stderr stream a terminal shows both.
                            if sendsErrors { try await channel.send(2, bytes) } else if request.tty { try await channel.send(1, bytes) }
                        }
                    } catch {
                        return .clientGone
                    }
                }
                return .outputEnded
            }
            group.addTask {
                await channel.receive(stdin: stdin, resize: { columns, rows in
                    // Small and rare: never waited for (dropped if the socket is full).
                    _ = descriptor.send([UInt8(ascii: "r"), UInt8(columns >> 8), UInt8(columns & 0xFF), UInt8(rows >> 8), UInt8(rows & 0xFF)], waiting: false)
                })
                return .clientGone
            }
            var closing = false
            while let event = await group.next() {
                switch event {
                case .outputEnded where !closing:
                    // The container exited (its monitor closed the socket).
                    closing = true
                    await channel.sendStatusAndClose(["metadata": [:], "status": "Success"])
                    group.addTask {
                        try? await Task.sleep(for: .seconds(5))
                        return .closeWaitEnded
                    }
                case .outputEnded:
                    continue
                case .clientGone, .closeWaitEnded:
                    descriptor.shutdown()
                    channel.abort()
                    group.cancelAll()
                }
            }
        }
        descriptor.close()
    }
}

/// The attach socket's descriptor, used from one blocking thread at a time per direction;
/// `shutdown` wakes a blocked receive.
final class AttachDescriptor: Sendable {
    let descriptor: CInt

    init(_ descriptor: CInt) { self.descriptor = descriptor }

    /// One whole message; false when the socket is gone (or, not `waiting`, full).
    func send(_ message: [UInt8], waiting: Bool = true) -> Bool {
        let flags = Int32(MSG_NOSIGNAL) | (waiting ? 0 : Int32(MSG_DONTWAIT))
        while true {
            let sent = message.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, flags) }
            if sent >= 0 { return true }
            if errno != EINTR { return false }
        }
    }

    /// The next message; nil at the end.
    func receive() -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 16385)
        while true {
            let received = buffer.withUnsafeMutableBytes { Glibc.recv(descriptor, $0.baseAddress, $0.count, 0) }
            if received > 0 { return Array(buffer[..<received]) }
            if received < 0, errno == EINTR { continue }
            return nil
        }
    }

    func shutdown() { _ = Glibc.shutdown(descriptor, Int32(SHUT_RDWR)) }
    func close() { _ = Glibc.close(descriptor) }
}
