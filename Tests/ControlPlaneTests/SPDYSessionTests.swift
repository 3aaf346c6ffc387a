import Foundation
import HTTPServing
import IotkubeTestSupport
import NIOCore
import Testing

/// The SPDY/3.1 server side the agent's exec speaks to older clients: frames, header blocks
/// through zlib with the SPDY/3 dictionary, and the bounds a hostile client meets.
@Suite(.ownThread) struct SPDYSessionTests {
    /// A header block (`streamtype: error`) compressed by another zlib user with the SPDY/3
    /// dictionary (its checksum, 0xe3c6a7c2, is in the block's zlib header): it must inflate
    /// with ours. kubectl 1.20's own blocks are checked end to end by `AgentTunnelTests`.
    @Test func aHeaderBlockCompressedElsewhereInflates() throws {
        let block: [UInt8] = [
            0x78, 0xbb, 0xe3, 0xc6, 0xa7, 0xc2, 0x02, 0xa6, 0x23, 0x46, 0x70, 0x3a, 0x2b, 0x29, 0x4a, 0x4d, 0xcc, 0x85, 0x16, 0x25,
            0xac, 0xa9, 0xa0, 0x80, 0x06, 0x00, 0x00, 0x00, 0xff, 0xff,
        ]
        let inflater = try SPDYHeaderCompression(compress: false)
        #expect(try SPDYHeaderCompression.decode(inflater.run(block)) == ["streamtype": "error"])
        #expect(SPDYHeaderCompression.dictionary.count == 1423)
    }

    @Test func framesRoundTrip() throws {
        for frame in [SPDYFrame.synStream(stream: 1, headerBlock: [1, 2, 3], fin: false), .synReply(stream: 3, headerBlock: [4], fin: true),
                      .rstStream(stream: 5, status: 5), .ping(7), .goAway(lastStream: 9, status: 0), .data(stream: 11, bytes: [9, 9], fin: true)] {
            let bytes = frame.encoded
            #expect(try SPDYFrame.decode(header: Array(bytes[..<8]), payload: Array(bytes[8...])) == frame, "\(frame)")
        }
        #expect(throws: SPDYFrame.ProtocolError.self) { try SPDYFrame.decode(header: [0x80, 0x02, 0, 1, 0, 0, 0, 0], payload: []) }
    }

    /// A client's streams are answered in order; data, a stdin FIN and the end arrive as events.
    @Test func streamsAreAcceptedAndDataFlows() async throws {
        let (server, descriptor) = try await TunnelPump.socketPair()
        let client = try await ByteStreamConnection.wrap(descriptor: descriptor)
        let session = try SPDYSession(connection: server)
        let test = try SPDYTestClient(connection: client)
        async let accepted = session.acceptStreams(["error", "stdin", "stdout"])
        for (id, type) in [(UInt32(1), "error"), (3, "stdin"), (5, "stdout")] { try await test.open(id, type) }
        let streams = try await accepted
        #expect(streams == ["error": 1, "stdin": 3, "stdout": 5])
        #expect(try await test.replies(3) == [1, 3, 5])
        try await client.write(ByteBuffer(bytes: SPDYFrame.data(stream: 3, bytes: Array("input".utf8), fin: true).encoded))
        #expect(try await session.next() == .data(stream: 3, bytes: Array("input".utf8), fin: true))
        try await session.send(stream: 5, Array("output".utf8), fin: true)
        #expect(try await test.frame() == .data(stream: 5, bytes: Array("output".utf8), fin: true))
        try await client.write(ByteBuffer(bytes: SPDYFrame.goAway(lastStream: 0, status: 0).encoded))
        #expect(try await session.next() == .goAway)
    }

    /// A header block that inflates past 64 KiB (a decompression bomb), an unexpected stream
    /// type and a huge frame end the session with a reason instead of buffering.
    @Test func hostileClientsEndTheSession() async throws {
        let expected = [
            "bomb": "over 65536 bytes", "unexpected": "unexpected stream", "huge": "a frame of", "length": "a length past its end",
            "unopened": "which is not open",
        ]
        for attack in ["bomb", "unexpected", "huge", "length", "unopened"] {
            let (server, descriptor) = try await TunnelPump.socketPair()
            let client = try await ByteStreamConnection.wrap(descriptor: descriptor)
            let session = try SPDYSession(connection: server)
            let test = try SPDYTestClient(connection: client)
            async let accepted = session.acceptStreams(["error", "stdin"])
            switch attack {
            case "bomb":
                try await test.open(1, "error", padding: 1 << 20)
            case "unexpected":
                try await test.open(1, "portforward")
            case "length":
                // One pair whose name claims 4 GiB (on a 32-bit board: -1 as an Int).
                try await test.open(1, rawBlock: [0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF])
            case "unopened":
                try await test.open(1, "error")
                try await client.write(ByteBuffer(bytes: SPDYFrame.data(stream: 3, bytes: [1], fin: false).encoded))
            default:
                try await client.write(ByteBuffer(bytes: [0x80, 0x03, 0x00, 0x01, 0x00, 0x7F, 0xFF, 0xFF]))
            }
            do {
                _ = try await accepted
                Issue.record("\(attack): the session went on")
            } catch {
                let text = "\(error)"
                #expect(text.contains(expected[attack]!), "\(attack): \(text)")
            }
            client.close()
        }
    }
}
