#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import HTTPServing
import KubeModel
import NIOCore
import NIOPosix
import OCI
import Runtime
import SystemSupport

/// One `kubectl exec` on the agent: the process inside the container with its stdio relayed over
/// a ``RemoteCommandChannel`` (WebSocket or SPDY). The final status carries the exit code as
/// kubectl reads it.
struct ExecSession: CommandSession {
    let runtime: any PodRuntime
    let containerID: String
    let process: RuntimeSpec.Process
    let request: RemoteCommandRequest

    private enum Event: Sendable {
        case exited(Int32)
        case streamEnded
        case clientGone
        case drainTimedOut
        case startWaitEnded
        case closeWaitEnded
    }

    func run(_ socket: any RemoteCommandChannel) async {
        await socket.begin()
        let runtime = self.runtime, id = containerID, process = self.process, stdin = request.stdin
        let started = await DedicatedThread.run { () -> Result<AttachedProcess, RuntimeError> in
            Result { () throws(RuntimeError) in try runtime.execAttached(id: id, process: process, stdin: stdin) }
        }
        let attached: AttachedProcess
        switch started {
        case .success(let value): attached = value
        case .failure(let error):
            await finish(socket, status: Self.internalError("error executing command in container: \(error)"))
            return
        }
        await relay(attached, socket)
    }

    /// Relays until the process exited and its output was sent, then sends its exit status and
    /// closes. A client that goes away leaves the process running without its stdin (a terminal
    /// hangs up), as with the kubelet; the session ends when the process does.
    private func relay(_ attached: AttachedProcess, _ socket: any RemoteCommandChannel) async {
        let channels: PipeChannels
        do {
            channels = try await PipeChannels.take(attached, stdin: request.stdin)
        } catch {
            kill(attached.pid, SIGKILL)
            attached.abandon()
            attached.closeTerminalSizer()
            _ = await DedicatedThread.run { attached.wait() }
            await finish(socket, status: Self.internalError("error relaying the command's streams: \(error)"))
            return
        }
        let errorsChannel: UInt8 = attached.terminal ? 1 : 2
        let sendsOutput = request.stdout || request.tty, sendsErrors = request.stderr || attached.terminal
        let stdin = request.stdin
        let command = request.command
        // A terminal's process starts once the client sent its size (kubectl does at once),
        // or after a moment without one, so it never reads a 0x0 terminal.
        let resize: @Sendable (UInt16, UInt16) -> Void = { columns, rows in
            attached.resize(columns: columns, rows: rows)
            attached.start()
        }
        do {
            try await channels.main.executeThenClose { mainInbound, mainOutbound in
                try await channels.errors.executeThenClose { errorsInbound, _ in
                    await withTaskGroup(of: Event.self) { group in
                        group.addTask { await Self.copy(mainInbound, to: socket, channel: 1, send: sendsOutput); return .streamEnded }
                        group.addTask { await Self.copy(errorsInbound, to: socket, channel: errorsChannel, send: sendsErrors); return .streamEnded }
                        group.addTask {
                            await socket.receive(stdin: stdin ? StdinSink(mainOutbound) : nil, resize: resize)
                            return .clientGone
                        }
                        group.addTask { .exited(await DedicatedThread.run { attached.wait() }) }
                        if attached.terminal {
                            group.addTask {
                                try? await Task.sleep(for: .milliseconds(500))
                                attached.start()
                                return .startWaitEnded
                            }
                        }
                        var exitCode: Int32?
                        var streamsOpen = 2
                        var drainStarted = false
                        var clientGone = false
                        var closing = false
                        while let event = await group.next() {
                            switch event {
                            case .exited(let code):
                                exitCode = code
                            case .streamEnded:
                                streamsOpen -= 1
                            case .clientGone:
                                // Nothing more is sent: close our ends (a terminal hangs up)
                                // and wait only for the process.
                                clientGone = true
                                channels.closeAll()
                                if exitCode != nil || closing {
                                    socket.abort()
                                    group.cancelAll()
                                    return
                                }
                                continue
                            case .drainTimedOut:
                                channels.closeAll()
                            case .startWaitEnded:
                                continue
                            case .closeWaitEnded:
                                socket.abort()
                                group.cancelAll()
                                return
                            }
                            guard let exitCode else { continue }
                            if streamsOpen == 0, !closing {
                                // The status goes last, then the close handshake: the socket
                                // closes once the client answered (the receiving task ends) or
                                // after a moment.
                                channels.closeAll()
                                if clientGone {
                                    socket.abort()
                                    group.cancelAll()
                                    return
                                }
                                await socket.sendStatusAndClose(exitCode == 0 ? ["metadata": [:], "status": "Success"] : Self.exitStatus(exitCode, command: command))
                                closing = true
                                group.addTask {
                                    try? await Task.sleep(for: .seconds(5))
                                    return .closeWaitEnded
                                }
                                continue
                            }
                            if closing { continue }
                            // Something the process started may hold its output open: send
                            // what arrives for a moment, then end.
                            if !drainStarted {
                                drainStarted = true
                                group.addTask {
                                    try? await Task.sleep(for: .seconds(2))
                                    return .drainTimedOut
                                }
                            }
                        }
                        socket.abort()
                    }
                }
            }
        } catch {
            socket.abort()
        }
        attached.closeTerminalSizer()
    }

    private func finish(_ socket: any RemoteCommandChannel, status: JSONValue) async {
        await socket.sendStatusAndClose(status)
        socket.abort()
    }

    /// Output bytes to the client on `stream` (read and dropped when the client did not ask
    /// for it, so the process never blocks on a full pipe).
    private static func copy(_ inbound: NIOAsyncChannelInboundStream<ByteBuffer>, to socket: any RemoteCommandChannel, channel: UInt8, send: Bool) async {
        do {
            for try await var buffer in inbound where send {
                while buffer.readableBytes > 0 {
                    let chunk = buffer.readBytes(length: min(buffer.readableBytes, 32 << 10)) ?? []
                    try await socket.send(channel, chunk)
                }
            }
        } catch {
            // A terminal's master reads EIO once the process is gone: the end of its output.
        }
    }

    static func exitStatus(_ code: Int32, command: [String]) -> JSONValue {
        [
            "metadata": [:], "status": "Failure", "reason": "NonZeroExitCode",
            "message": .string("command terminated with non-zero exit code: error executing command \(command), exit code \(code)"),
            "details": ["causes": [["reason": "ExitCode", "message": .string(String(code))]]],
        ]
    }

    static func internalError(_ message: String) -> JSONValue {
        ["metadata": [:], "status": "Failure", "code": 500, "reason": "InternalError", "message": .string("Internal error occurred: \(message)")]
    }
}

/// The process's descriptors as NIO pipe channels (non-blocking, no thread each): `main` reads
/// its stdout (or the terminal) and writes its stdin; `errors` reads its stderr.
struct PipeChannels: Sendable {
    let main: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    let errors: NIOAsyncChannel<ByteBuffer, ByteBuffer>

    static func take(_ process: AttachedProcess, stdin: Bool) async throws -> PipeChannels {
        // Finishing the writer closes only stdin, not the whole channel.
        @Sendable func wrap(_ channel: any Channel) -> EventLoopFuture<NIOAsyncChannel<ByteBuffer, ByteBuffer>> {
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                    wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
            }
        }
        let bootstrap = NIOPipeBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        // NIO owns a descriptor from the hand-off on: it closes it itself when a step after
        // building its channel fails, and pipes and terminals pass the checks before that. So a
        // failed hand-off closes here only what was never handed over: closing a descriptor
        // twice would close whatever another task opened under its number meanwhile.
        let main: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        var handed: [CInt] = []
        do {
            if process.terminal, stdin {
                // Our own second descriptor (NIO's inputOutput variant traps when dup fails).
                let writing = fcntl(process.output, F_DUPFD_CLOEXEC, 3)
                guard writing >= 0 else { throw PipeError("duplicating the terminal: \(String(cString: strerror(errno)))") }
                handed = [process.output, writing]
                main = try await bootstrap.takingOwnershipOfDescriptors(input: process.output, output: writing) { wrap($0) }
            } else if let input = process.input {
                handed = [process.output, input]
                main = try await bootstrap.takingOwnershipOfDescriptors(input: process.output, output: input) { wrap($0) }
            } else {
                handed = [process.output]
                main = try await bootstrap.takingOwnershipOfDescriptor(input: process.output) { wrap($0) }
            }
        } catch {
            let notHanded = ([process.output, process.errors] + (process.input.map { [$0] } ?? [])).filter { !handed.contains($0) }
            for descriptor in Set(notHanded) { close(descriptor) }
            throw error
        }
        do {
            let errors = try await bootstrap.takingOwnershipOfDescriptor(input: process.errors) { wrap($0) }
            return PipeChannels(main: main, errors: errors)
        } catch {
            main.channel.close(promise: nil)
            throw error
        }
    }

    func closeAll() {
        main.channel.close(promise: nil)
        errors.channel.close(promise: nil)
    }

    struct PipeError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }
}


