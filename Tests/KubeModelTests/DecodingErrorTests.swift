import Testing

@testable import KubeModel

/// Bad input becomes a typed error that names the field, never a crash.
struct DecodingErrorTests {
    static let twoContainers = """
        apiVersion: v1
        kind: Pod
        metadata: {name: bad}
        spec:
          containers:
            - name: ok
              image: busybox
            - name: broken
              image: busybox
              resources:
                limits:
                  memory: 12Qi
        """

    @Test func badQuantityNamesItsFieldPath() {
        #expect {
            try KubeYAML.decode(Pod.self, from: Self.twoContainers)
        } throws: { error in
            let error = error as! KubeDecodingError
            return error.kind == .invalidValue && error.path == "spec.containers[1].resources.limits.memory"
                && error.description.hasPrefix("spec.containers[1].resources.limits.memory: \"12Qi\" is not a quantity")
        }
    }

    static let cases: [(document: String, path: String, kind: KubeDecodingError.Kind, message: String)] = [
        (#"{"spec": {"containers": [{"name": "a", "ports": [{"containerPort": "80"}]}]}}"#,
         "spec.containers[0].ports[0].containerPort", .typeMismatch, "expected integer, found string \"80\""),
        (#"{"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80.5}]}]}}"#,
         "spec.containers[0].ports[0].containerPort", .typeMismatch, "expected integer, found number 80.5"),
        (#"{"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 99999999999}]}]}}"#,
         "spec.containers[0].ports[0].containerPort", .invalidValue, "99999999999 is out of range for a 32-bit integer"),
        (#"{"spec": {"containers": [{"image": "busybox"}]}}"#, "spec.containers[0].name", .missingField, "required value is missing"),
        (#"{"spec": {"containers": [{"name": null}]}}"#, "spec.containers[0].name", .missingField, "required value is missing"),
        (#"{"spec": {"restartPolicy": "Sometimes", "containers": []}}"#, "spec.restartPolicy", .invalidValue,
         #"unsupported value "Sometimes": supported values: "Always", "OnFailure", "Never""#),
        (#"{"spec": {"containers": "busybox"}}"#, "spec.containers", .typeMismatch, "expected array, found string \"busybox\""),
        (#"{"metadata": {"labels": {"app.kubernetes.io/name": 5}}}"#, "metadata.labels[app.kubernetes.io/name]", .typeMismatch,
         "expected string, found number 5"),
        (#"{"metadata": {"creationTimestamp": "yesterday"}}"#, "metadata.creationTimestamp", .invalidValue,
         #""yesterday" is not an RFC 3339 time: expected digits for year"#),
        (#"{"spec": {"containers": [{"name": "a", "livenessProbe": {"httpGet": {"port": true}}}]}}"#,
         "spec.containers[0].livenessProbe.httpGet.port", .typeMismatch, "expected integer or string, found boolean true"),
        (#"{"spec": {"containers": [{"name": "a", "livenessProbe": {"httpGet": {"port": 80, "scheme": "FTP"}}}]}}"#,
         "spec.containers[0].livenessProbe.httpGet.scheme", .invalidValue, #"unsupported value "FTP": supported values: "HTTP", "HTTPS""#),
        (#"{"spec": {"containers": [], "volumes": [{"name": "v", "hostPath": {"path": "/x", "type": "Folder"}}]}}"#,
         "spec.volumes[0].hostPath.type", .invalidValue, "unsupported value \"Folder\""),
        (#"{"spec": {"containers": [], "hostNetwork": "yes"}}"#, "spec.hostNetwork", .typeMismatch, "expected boolean, found string \"yes\""),
        (#"{"spec": {"containers": [{"name": "a", "resources": {"requests": {"cpu": "-"}}}]}}"#, "", .invalidValue, ""),
    ]

    @Test(arguments: 0..<cases.count)
    func typedErrorForBadField(_ index: Int) {
        let testCase = Self.cases[index]
        do {
            _ = try KubeJSON.decode(Pod.self, from: testCase.document)
            // "-" parses as zero in Kubernetes too; the last case documents that it is accepted.
            #expect(testCase.path.isEmpty, "expected an error at \(testCase.path)")
        } catch {
            #expect(error.path == testCase.path)
            #expect(error.kind == testCase.kind)
            #expect(error.message.hasPrefix(testCase.message), "\(error.message)")
        }
    }

    @Test func malformedJSONReportsLineAndColumn() {
        let broken = "{\n  \"kind\": \"Pod\",\n  \"spec\": {\"containers\": [}\n}"
        #expect(throws: KubeDecodingError(kind: .syntax, path: "", message: "invalid JSON at line 3, column 27: unexpected '}', expected a value")) {
            try KubeJSON.decode(Pod.self, from: broken)
        }
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "{\"a\":1,}", "\"\\x\"", "01", "-", "1.", "1e", "tru", "{\"a\":1}x", "\"\u{01}\""] {
            #expect(throws: KubeDecodingError.self, "\(bad)") { try KubeJSON.parse(Array(bad.utf8)) }
        }
    }

    @Test func hostileNestingIsRefused() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect {
            try KubeJSON.parse(Array(deep.utf8))
        } throws: { error in
            (error as? KubeDecodingError)?.message.contains("nesting deeper than") == true
        }
    }

    @Test func strictValidationListsUnknownAndDuplicateFields() {
        let document = #"{"kind": "Pod", "spec": {"containers": [{"name": "a", "imagePullPolicyy": "Always"}], "foo": 1}, "kind": "Pod"}"#
        #expect(throws: KubeDecodingError(
            kind: .unknownField, path: "",
            message: #"strict decoding error: unknown field "spec.containers[0].imagePullPolicyy", unknown field "spec.foo", duplicate field line 1: "kind""#
        )) {
            try KubeJSON.decode(Pod.self, from: document, validation: .strict)
        }
        // Without strict validation the same document decodes and keeps the fields.
        #expect(throws: Never.self) { try KubeJSON.decode(Pod.self, from: document) }
    }

    @Test func wrongTopLevelTypes() {
        #expect(throws: KubeDecodingError(kind: .typeMismatch, path: "", message: "expected object, found array")) {
            try KubeJSON.decode(Pod.self, from: "[]")
        }
        #expect(throws: KubeDecodingError(kind: .typeMismatch, path: "items[0]", message: "expected object, found number 3")) {
            try KubeJSON.decode(KubeList<Pod>.self, from: #"{"items": [3]}"#)
        }
    }

    @Test func stringsAndNumbersSurviveExactly() throws {
        let text = #"{"a":"tab\there \"q\" <b> & é 😀 \u00e9 \ud83d\ude00","n":[0,-1,1.50,1e3,12345678901234567890123]}"#
        let tree = try KubeJSON.parse(Array(text.utf8))
        #expect(tree["a"] == .string("tab\there \"q\" <b> & é 😀 é 😀"))
        #expect(tree["n"] == [.number("0"), .number("-1"), .number("1.50"), .number("1e3"), .number("12345678901234567890123")])
        let written = String(decoding: KubeJSON.serialize(tree), as: UTF8.self)
        #expect(written == #"{"a":"tab\there \"q\" \u003cb\u003e \u0026 é 😀 é 😀","n":[0,-1,1.50,1e3,12345678901234567890123]}"#)
        #expect(try KubeJSON.parse(Array(written.utf8)) == tree)
    }
}
