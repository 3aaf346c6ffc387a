import NIOCore

/// Closes the channel when `IdleStateHandler` reports no reads within the timeout, and says so
/// in an ``IdleReadState``.
final class CloseOnIdleHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = NIOAny
    let state: IdleReadState
    init(state: IdleReadState) { self.state = state }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            state.fire()
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
