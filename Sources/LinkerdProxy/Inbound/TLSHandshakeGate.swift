import NIOCore
import NIOTLS

/// Sits right after a TLS handler (and its ``PeerVerificationErrorHandler``) and reports the end of the handshake:
/// `established` succeeds with the peer's verified identity (``TLSPeerIdentity/verifiedPeerName(in:)``, nil when the
/// peer presented no certificate) once NIOSSL reports the handshake complete, and fails when the handshake fails, the
/// connection closes first, or `deadline` passes first; the channel is then closed.
///
/// From the end of the handshake until the gate is removed, it holds the decrypted bytes that arrive (and a
/// half-closure), and stops reading while it holds any, so that nothing is lost while the caller sets up what comes
/// next (the connection to the other side and the splice); when it is removed, it passes on what it holds, in order,
/// and reads again. The caller must remove it once `established` has succeeded.
final class TLSHandshakeGate: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = NIOAny

    private let established: EventLoopPromise<String?>
    private let deadline: NIODeadline
    private var deadlineTask: Scheduled<Void>?
    private var isHandshaking = true
    private var isClosed = false
    private var held: ByteBuffer?
    private var heldInputClosed = false
    private var readPending = false

    /// Removes the gate from `pipeline`, if it has one, so that it passes on what it holds. Call it on the channel's
    /// event loop.
    static func release(in pipeline: ChannelPipeline.SynchronousOperations) {
        guard let gate = try? pipeline.handler(type: TLSHandshakeGate.self) else { return }
        pipeline.removeHandler(gate, promise: nil)
    }

    /// - Parameter deadline: when to give up on the handshake.
    init(established: EventLoopPromise<String?>, deadline: NIODeadline) {
        self.established = established
        self.deadline = deadline
    }

    func handlerAdded(context: ChannelHandlerContext) {
        deadlineTask = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.fail(context: context, error: ProxyConnectionError.handshakeTimedOut)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelDeadline()
        if isHandshaking {
            isHandshaking = false
            established.fail(ProxyConnectionError.closedDuringHandshake)
        }
        guard !isClosed else { return }
        if let held {
            self.held = nil
            context.fireChannelRead(wrapInboundOut(held))
            context.fireChannelReadComplete()
        }
        if heldInputClosed {
            heldInputClosed = false
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
        if readPending {
            readPending = false
            context.read()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event, isHandshaking {
            isHandshaking = false
            cancelDeadline()
            established.succeed(TLSPeerIdentity.verifiedPeerName(in: context.pipeline.syncOperations))
        } else if case ChannelEvent.inputClosed = event {
            heldInputClosed = true
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if var existing = held {
            held = nil
            existing.writeBuffer(&buffer)
            held = existing
        } else {
            held = buffer
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Held: the replay on removal fires its own read-complete.
    }

    func read(context: ChannelHandlerContext) {
        if held != nil || heldInputClosed {
            readPending = true
        } else {
            context.read()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context: context, error: error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        isClosed = true
        if isHandshaking {
            isHandshaking = false
            cancelDeadline()
            established.fail(ProxyConnectionError.closedDuringHandshake)
        }
        context.fireChannelInactive()
    }

    /// Fails `established` if the handshake is still running, and closes the channel either way: an error after the
    /// handshake, before the caller removed the gate, ends the connection too.
    private func fail(context: ChannelHandlerContext, error: any Error) {
        cancelDeadline()
        if isHandshaking {
            isHandshaking = false
            established.fail(error)
        }
        context.close(promise: nil)
    }

    private func cancelDeadline() {
        deadlineTask?.cancel()
        deadlineTask = nil
    }
}

@available(*, unavailable)
extension TLSHandshakeGate: Sendable {}
