import Testing

@testable import KubeModel

/// YAML as Kubernetes tooling reads it, and hostile YAML refused cleanly.
struct YAMLTests {
    static func tree(_ text: String) throws -> JSONValue {
        let documents = try KubeYAML.documents(Array(text.utf8))
        try #require(documents.count == 1)
        return documents[0]
    }

    @Test func scalarsResolveLikeKubectl() throws {
        let tree = try Self.tree("""
            octal: 0644
            octal12: 0o644
            hex: 0x1F
            binary: 0b101
            decimal: 1_000
            negative: -17
            zero: 0
            float: 1.5
            leadingDot: .5
            trailingDot: 1.
            exponent: 2e3
            yes: yes
            off: Off
            truth: true
            nothing: ~
            empty:
            nullWord: null
            quoted: "0644"
            single: 'true'
            text: hello world
            version: v1.2
            ip: 10.0.0.1
            time: 2026-11-23T10:00:00Z
            tagged: !!str 123
            taggedInt: !!int "42"
            literal: |
              line one
              line two
            folded: >
              folded
              text
            """)
        #expect(tree["octal"] == 420)
        #expect(tree["octal12"] == 420)
        #expect(tree["hex"] == 31)
        #expect(tree["binary"] == 5)
        #expect(tree["decimal"] == 1000)
        #expect(tree["negative"] == -17)
        #expect(tree["zero"] == 0)
        #expect(tree["float"] == .number("1.5"))
        #expect(tree["leadingDot"] == .number("0.5"))
        #expect(tree["trailingDot"] == .number("1"))
        #expect(tree["exponent"] == .number("2e3"))
        #expect(tree["yes"] == true)
        #expect(tree["off"] == false)
        #expect(tree["truth"] == true)
        #expect(tree["nothing"] == .null)
        #expect(tree["empty"] == .null)
        #expect(tree["nullWord"] == .null)
        #expect(tree["quoted"] == "0644")
        #expect(tree["single"] == "true")
        #expect(tree["text"] == "hello world")
        #expect(tree["version"] == "v1.2")
        #expect(tree["ip"] == "10.0.0.1")
        #expect(tree["time"] == "2026-11-23T10:00:00Z")
        #expect(tree["tagged"] == "123")
        #expect(tree["taggedInt"] == 42)
        #expect(tree["literal"] == "line one\nline two\n")
        #expect(tree["folded"] == "folded text")
    }

    @Test func anchorsAliasesAndMergeKeys() throws {
        let tree = try Self.tree("""
            defaults: &defaults
              image: busybox
              imagePullPolicy: IfNotPresent
            containers:
              - <<: *defaults
                name: a
              - <<: *defaults
                name: b
                image: alpine
            same: *defaults
            """)
        #expect(tree["containers"] == [
            ["name": "a", "image": "busybox", "imagePullPolicy": "IfNotPresent"],
            ["name": "b", "image": "alpine", "imagePullPolicy": "IfNotPresent"],
        ])
        #expect(tree["same"] == tree["defaults"])
    }

    @Test func multiDocumentStreamsSkipEmptyDocuments() throws {
        let text = "---\n# only a comment\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c}]}\n---\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec: {containers: [{name: c}]}\n"
        let pods = try KubeYAML.decodeAll(Pod.self, from: Array(text.utf8))
        #expect(pods.map(\.metadata.name) == ["a", "b"])
        #expect(throws: KubeDecodingError(kind: .syntax, path: "", message: "expected one YAML document, found 2")) {
            try KubeYAML.decode(Pod.self, from: text)
        }
    }

    @Test func errorsNameTheDocumentAndField() {
        let text = "kind: Pod\nspec: {containers: [{name: a}]}\n---\nkind: Pod\nspec:\n  containers:\n    - name: b\n      env:\n        - name: PORT\n          value: 8080\n"
        #expect(throws: KubeDecodingError(kind: .typeMismatch, path: "spec.containers[0].env[0].value", message: "expected string, found number 8080", document: 2)) {
            try KubeYAML.decodeAll(Pod.self, from: Array(text.utf8))
        }
    }

    @Test func malformedYAMLReportsLineAndColumn() {
        #expect {
            try KubeYAML.documents(Array("spec:\n  containers:\n    - name: a\n   bad: [\n".utf8))
        } throws: { error in
            let message = (error as! KubeDecodingError).message
            return message.hasPrefix("invalid YAML at line 4")
        }
        for bad in ["a: b: c", "key: \"unterminated", "- a\nb: c", "a: *nowhere", "{a: 1, a: 2}", "? [complex]\n: key", "x: .inf", "x: !!int abc", "x: !custom 1", "\t- tab"] {
            #expect(throws: KubeDecodingError.self, "\(bad)") { try KubeYAML.documents(Array(bad.utf8)) }
        }
    }

    @Test func aliasBombIsRefused() {
        var text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for level in 1...9 {
            let previous = "*a\(level - 1)"
            text += "a\(level): &a\(level) [\(Array(repeating: previous, count: 10).joined(separator: ", "))]\n"
        }
        #expect {
            try KubeYAML.documents(Array(text.utf8))
        } throws: { error in
            (error as! KubeDecodingError).message.contains("alias bomb")
        }
    }

    @Test func deepNestingIsRefused() {
        let text = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: KubeDecodingError.self) { try KubeYAML.documents(Array(text.utf8)) }
    }

    @Test func quantitiesFromYAMLNumbers() throws {
        let container = try KubeYAML.decode(Container.self, from: "name: a\nresources:\n  limits: {cpu: 0.5, memory: 1e9}\n  requests: {cpu: 2}\n")
        #expect(container.resources?.limits?["cpu"]?.description == "500m")
        #expect(container.resources?.limits?["memory"]?.byteCount == 1_000_000_000)
        #expect(container.resources?.requests?["cpu"]?.milliValue == 2000)
    }

    /// Every field's line, by the field path decoding errors use, so an error can say where.
    @Test func fieldsKnowTheirLines() {
        let text = """
            # a comment
            spec:
              containers:
              - name: app
                image: busybox
                args: ["a",
                  "b"]
              - {name: side, image: x}
            labels: {zone: kitchen}
            """
        let lines = KubeYAML.lines(Array(text.utf8))
        #expect(lines["spec"] == 2 && lines["spec.containers"] == 3 && lines["spec.containers[0]"] == 4)
        #expect(lines["spec.containers[0].image"] == 5 && lines["spec.containers[0].args[1]"] == 7)
        #expect(lines["spec.containers[1]"] == 8 && lines["spec.containers[1].image"] == 8 && lines["labels.zone"] == 9)
        #expect(KubeYAML.lines(Array("a: [".utf8)).isEmpty)
    }
}
