import IotkubeTestSupport
import Testing

@testable import KubeCoding
@testable import KubeModel

/// Inputs whose size a client chooses must cost linear work: a quadratic step is a denial of
/// service any authenticated client (even a bootstrap token) can trigger.
@Suite(.ownThread)
struct QuadraticInputTests {
    /// `{"a":0,"a":0,...}`: the line of each duplicate once rescanned the body from its start.
    @Test func duplicateKeyLinesCostOnePassOverTheBody() throws {
        let duplicates = 20_000
        let body = Array(("{" + Array(repeating: "\"a\":0", count: duplicates).joined(separator: ",\n") + "}").utf8)
        var parser = JSONParser(bytes: body)
        _ = try parser.parseDocument()
        #expect(parser.positionBytesScanned <= body.count)
        #expect(parser.duplicateKeys.count == JSONParser.maximumReportedDuplicates)
        #expect(parser.duplicateKeys.first == #"line 2: "a""#)
        #expect(parser.duplicateKeys.last == "line \(JSONParser.maximumReportedDuplicates + 1): \"a\"")
    }

    /// Duplicates are reported in document order with their lines, nested ones included.
    @Test func nestedDuplicateKeysKeepTheirLines() throws {
        var parser = JSONParser(bytes: Array(#"{"a":1,"# .utf8) + [0x0A] + Array(#""a":{"b":1,"# .utf8) + [0x0A] + Array(#""b":2}}"#.utf8))
        let value = try parser.parseDocument()
        #expect(parser.duplicateKeys == [#"line 2: "a""#, #"line 3: "b""#])
        #expect(value == .object(["a": .object(["b": .number("2")])]))
    }

    /// A node with 200,000 annotations: the store compares it with the stored one under its lock.
    @Test(.timeLimit(.minutes(1))) func equalityOfLargeObjectsIsLinear() {
        let count = 200_000
        var forward = JSONObject()
        var backward = JSONObject()
        for index in 0..<count { forward["k\(index)"] = .string("v") }
        for index in (0..<count).reversed() { backward["k\(index)"] = .string("v") }
        #expect(forward == backward)
        #expect(forward.hashValue == backward.hashValue)
        backward["k0"] = .string("changed")
        #expect(forward != backward)
    }

    /// Removing members from a large object keeps the others, in order, and findable.
    @Test(.timeLimit(.minutes(1))) func removalKeepsOrderAndLookup() {
        var object = JSONObject()
        for index in 0..<100_000 { object["k\(index)"] = .number("\(index)") }
        for index in 0..<100_000 where index % 3 != 0 { object["k\(index)"] = nil }
        #expect(object.count == 33_334)
        #expect(object.keys.prefix(3) == ["k0", "k3", "k6"])
        #expect(object["k99999"] == .number("99999"))
        #expect(object["k99998"] == nil)
        for index in 0..<100_000 where index % 3 == 0 && index > 12 { object["k\(index)"] = nil }
        #expect(object.keys == ["k0", "k3", "k6", "k9", "k12"])
        object["k3"] = nil
        object["new"] = .bool(true)
        #expect(object.keys == ["k0", "k6", "k9", "k12", "new"])
        #expect(object == ["new": .bool(true), "k12": .number("12"), "k9": .number("9"), "k6": .number("6"), "k0": .number("0")])
    }
}
