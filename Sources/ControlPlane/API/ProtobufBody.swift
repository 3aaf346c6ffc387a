import FoundationEssentials
import KubeModel

/// Reads the Kubernetes protobuf wire format (`application/vnd.kubernetes.protobuf`) that kubectl's
/// generators send (`kubectl create namespace|configmap|secret|serviceaccount`), turning it into
/// the same JSON tree a JSON body would give. Kinds without a schema here are refused with 415,
/// and a field this schema does not know is an error rather than silently lost.
enum ProtobufBody {
    static let magic: [UInt8] = [0x6B, 0x38, 0x73, 0x00]  // "k8s\0"

    indirect enum FieldType {
        case string
        case bytes
        case int64
        case bool
        /// A Go field that is not a pointer: written even when zero, which means unset.
        case plainInt
        case plainBool
        case time
        /// `intstr.IntOrString`: a number or a name (a service's `targetPort`).
        case intOrString
        case message(Schema)
        case map(FieldType)
        case repeated(FieldType)
    }

    struct Schema {
        var fields: [Int: (name: String, type: FieldType)]
    }

    static let ownerReference = Schema(fields: [
        1: ("kind", .string), 3: ("name", .string), 4: ("uid", .string), 5: ("apiVersion", .string), 6: ("controller", .bool),
        7: ("blockOwnerDeletion", .bool),
    ])
    static let objectMeta = Schema(fields: [
        1: ("name", .string), 2: ("generateName", .string), 3: ("namespace", .string), 4: ("selfLink", .string), 5: ("uid", .string),
        6: ("resourceVersion", .string), 7: ("generation", .plainInt), 8: ("creationTimestamp", .time), 9: ("deletionTimestamp", .time),
        10: ("deletionGracePeriodSeconds", .int64), 11: ("labels", .map(.string)), 12: ("annotations", .map(.string)),
        13: ("ownerReferences", .repeated(.message(ownerReference))), 14: ("finalizers", .repeated(.string)),
    ])
    static let localObjectReference = Schema(fields: [1: ("name", .string)])
    static let objectReference = Schema(fields: [
        1: ("kind", .string), 2: ("namespace", .string), 3: ("name", .string), 4: ("uid", .string), 5: ("apiVersion", .string),
        6: ("resourceVersion", .string), 7: ("fieldPath", .string),
    ])

    static let csrCondition = Schema(fields: [
        1: ("type", .string), 2: ("reason", .string), 3: ("message", .string), 4: ("lastUpdateTime", .time),
        5: ("lastTransitionTime", .time), 6: ("status", .string),
    ])

    static let labelSelector = Schema(fields: [
        1: ("matchLabels", .map(.string)),
        2: ("matchExpressions", .repeated(.message(Schema(fields: [1: ("key", .string), 2: ("operator", .string), 3: ("values", .repeated(.string))])))),
    ])
    /// The container fields kubectl's generators write (`kubectl create deployment`); quantities
    /// and probes are not read here (such bodies are refused, naming the field).
    static let container = Schema(fields: [
        1: ("name", .string), 2: ("image", .string), 3: ("command", .repeated(.string)), 4: ("args", .repeated(.string)), 5: ("workingDir", .string),
        6: ("ports", .repeated(.message(Schema(fields: [
            1: ("name", .string), 2: ("hostPort", .plainInt), 3: ("containerPort", .int64), 4: ("protocol", .string), 5: ("hostIP", .string),
        ])))),
        7: ("env", .repeated(.message(Schema(fields: [1: ("name", .string), 2: ("value", .string)])))),
        8: ("resources", .message(Schema(fields: [:]))),
        13: ("terminationMessagePath", .string), 14: ("imagePullPolicy", .string), 16: ("stdin", .plainBool), 17: ("stdinOnce", .plainBool), 18: ("tty", .plainBool),
        20: ("terminationMessagePolicy", .string),
    ])
    static let podSpec = Schema(fields: [
        2: ("containers", .repeated(.message(container))), 3: ("restartPolicy", .string), 4: ("terminationGracePeriodSeconds", .int64),
        5: ("activeDeadlineSeconds", .int64), 6: ("dnsPolicy", .string), 7: ("nodeSelector", .map(.string)), 8: ("serviceAccountName", .string),
        9: ("serviceAccount", .string), 10: ("nodeName", .string), 11: ("hostNetwork", .plainBool), 12: ("hostPID", .plainBool), 13: ("hostIPC", .plainBool),
        15: ("imagePullSecrets", .repeated(.message(localObjectReference))), 16: ("hostname", .string), 17: ("subdomain", .string),
        19: ("schedulerName", .string), 20: ("initContainers", .repeated(.message(container))), 24: ("priorityClassName", .string),
    ])
    static let podTemplateSpec = Schema(fields: [1: ("metadata", .message(objectMeta)), 2: ("spec", .message(podSpec))])

    static let jobSpec = Schema(fields: [
        1: ("parallelism", .int64), 2: ("completions", .int64), 3: ("activeDeadlineSeconds", .int64), 4: ("selector", .message(labelSelector)),
        5: ("manualSelector", .bool), 6: ("template", .message(podTemplateSpec)), 7: ("backoffLimit", .int64), 8: ("ttlSecondsAfterFinished", .int64),
        9: ("completionMode", .string), 10: ("suspend", .bool), 14: ("podReplacementPolicy", .string),
    ])

    static let servicePort = Schema(fields: [
        1: ("name", .string), 2: ("protocol", .string), 3: ("port", .plainInt), 4: ("targetPort", .intOrString), 5: ("nodePort", .plainInt),
        6: ("appProtocol", .string),
    ])

    static let schemas: [String: Schema] = [
        // kubectl expose and kubectl create service.
        "Service": Schema(fields: [
            1: ("metadata", .message(objectMeta)),
            2: ("spec", .message(Schema(fields: [
                1: ("ports", .repeated(.message(servicePort))), 2: ("selector", .map(.string)), 3: ("clusterIP", .string), 4: ("type", .string),
                5: ("externalIPs", .repeated(.string)), 7: ("sessionAffinity", .string), 8: ("loadBalancerIP", .string),
                9: ("loadBalancerSourceRanges", .repeated(.string)), 10: ("externalName", .string), 11: ("externalTrafficPolicy", .string),
                12: ("healthCheckNodePort", .plainInt), 13: ("publishNotReadyAddresses", .plainBool),
                14: ("sessionAffinityConfig", .message(Schema(fields: [1: ("clientIP", .message(Schema(fields: [1: ("timeoutSeconds", .int64)])))]))),
                17: ("ipFamilyPolicy", .string), 18: ("clusterIPs", .repeated(.string)), 19: ("ipFamilies", .repeated(.string)),
                20: ("allocateLoadBalancerNodePorts", .bool), 21: ("loadBalancerClass", .string), 22: ("internalTrafficPolicy", .string),
                23: ("trafficDistribution", .string),
            ]))),
            3: ("status", .message(Schema(fields: [
                1: ("loadBalancer", .message(Schema(fields: [1: ("ingress", .repeated(.message(Schema(fields: [1: ("ip", .string), 2: ("hostname", .string)]))))]))),
            ]))),
        ]),
        // kubectl create job and cronjob (batch/v1).
        "Job": Schema(fields: [
            1: ("metadata", .message(objectMeta)), 2: ("spec", .message(jobSpec)),
            3: ("status", .message(Schema(fields: [
                2: ("startTime", .time), 3: ("completionTime", .time), 4: ("active", .plainInt), 5: ("succeeded", .plainInt), 6: ("failed", .plainInt),
                7: ("completedIndexes", .string), 9: ("ready", .int64), 10: ("failedIndexes", .string), 11: ("terminating", .int64),
            ]))),
        ]),
        "CronJob": Schema(fields: [
            1: ("metadata", .message(objectMeta)),
            2: ("spec", .message(Schema(fields: [
                1: ("schedule", .string), 2: ("startingDeadlineSeconds", .int64), 3: ("concurrencyPolicy", .string), 4: ("suspend", .bool),
                5: ("jobTemplate", .message(Schema(fields: [1: ("metadata", .message(objectMeta)), 2: ("spec", .message(jobSpec))]))),
                6: ("successfulJobsHistoryLimit", .int64), 7: ("failedJobsHistoryLimit", .int64), 8: ("timeZone", .string),
            ]))),
            3: ("status", .message(Schema(fields: [:]))),
        ]),
        // kubectl create deployment (apps/v1): the generator's fields; status is the server's.
        "Deployment": Schema(fields: [
            1: ("metadata", .message(objectMeta)),
            2: ("spec", .message(Schema(fields: [
                1: ("replicas", .int64), 2: ("selector", .message(labelSelector)), 3: ("template", .message(podTemplateSpec)),
                4: ("strategy", .message(Schema(fields: [1: ("type", .string)]))), 5: ("minReadySeconds", .plainInt), 6: ("revisionHistoryLimit", .int64),
                7: ("paused", .plainBool), 9: ("progressDeadlineSeconds", .int64),
            ]))),
            3: ("status", .message(Schema(fields: [
                1: ("observedGeneration", .plainInt), 2: ("replicas", .plainInt), 3: ("updatedReplicas", .plainInt), 4: ("availableReplicas", .plainInt),
                5: ("unavailableReplicas", .plainInt), 7: ("readyReplicas", .plainInt), 8: ("collisionCount", .int64),
            ]))),
        ]),
        // kubectl certificate approve|deny sends the whole request to /approval.
        "CertificateSigningRequest": Schema(fields: [
            1: ("metadata", .message(objectMeta)),
            2: ("spec", .message(Schema(fields: [
                1: ("request", .bytes), 2: ("username", .string), 3: ("uid", .string), 4: ("groups", .repeated(.string)),
                5: ("usages", .repeated(.string)), 7: ("signerName", .string), 8: ("expirationSeconds", .int64),
            ]))),
            3: ("status", .message(Schema(fields: [1: ("conditions", .repeated(.message(csrCondition))), 2: ("certificate", .bytes)]))),
        ]),
        "ConfigMap": Schema(fields: [1: ("metadata", .message(objectMeta)), 2: ("data", .map(.string)), 3: ("binaryData", .map(.bytes)), 4: ("immutable", .bool)]),
        "Namespace": Schema(fields: [
            1: ("metadata", .message(objectMeta)), 2: ("spec", .message(Schema(fields: [1: ("finalizers", .repeated(.string))]))),
            3: ("status", .message(Schema(fields: [1: ("phase", .string)]))),
        ]),
        "Secret": Schema(fields: [
            1: ("metadata", .message(objectMeta)), 2: ("data", .map(.bytes)), 3: ("type", .string), 4: ("stringData", .map(.string)), 5: ("immutable", .bool),
        ]),
        "ServiceAccount": Schema(fields: [
            1: ("metadata", .message(objectMeta)), 2: ("secrets", .repeated(.message(objectReference))),
            3: ("imagePullSecrets", .repeated(.message(localObjectReference))), 4: ("automountServiceAccountToken", .bool),
        ]),
    ]

    /// Decodes a protobuf request body into a JSON tree.
    static func decode(_ bytes: [UInt8]) throws -> JSONValue {
        guard bytes.count >= 4, Array(bytes[0..<4]) == magic else { throw APIError.badRequest("protobuf body without the k8s envelope") }
        var envelope = Reader(bytes: bytes[4...])
        var apiVersion = ""
        var kind = ""
        var raw: ArraySlice<UInt8> = []
        while let (number, wireType) = try envelope.tag() {
            switch (number, wireType) {
            case (1, 2):
                var typeMeta = Reader(bytes: try envelope.lengthDelimited())
                while let (field, type) = try typeMeta.tag() {
                    if field == 1 && type == 2 { apiVersion = try typeMeta.string() }
                    else if field == 2 && type == 2 { kind = try typeMeta.string() }
                    else { try typeMeta.skip(type) }
                }
            case (2, 2): raw = try envelope.lengthDelimited()
            default: try envelope.skip(wireType)
            }
        }
        guard let schema = schemas[kind] else {
            throw APIError(code: 415, reason: "UnsupportedMediaType", message: "protobuf bodies are accepted for CertificateSigningRequest, ConfigMap, CronJob, Deployment, Job, Namespace, Secret, Service and ServiceAccount only; send \(kind) as application/json")
        }
        var object = try message(raw, schema, path: kind)
        object.set(["apiVersion"], .string(apiVersion))
        object.set(["kind"], .string(kind))
        return object
    }

    private static func message(_ bytes: ArraySlice<UInt8>, _ schema: Schema, path: String) throws -> JSONValue {
        var reader = Reader(bytes: bytes)
        var object = JSONObject()
        // Lists and maps are gathered apart and set once (appending to the object's copy for
        // each element would be quadratic in the element count).
        var lists: [String: [JSONValue]] = [:]
        var maps: [String: JSONObject] = [:]
        var order: [String] = []
        while let (number, wireType) = try reader.tag() {
            guard let (name, type) = schema.fields[number] else {
                throw APIError.badRequest("protobuf field \(number) of \(path) is not supported; send the object as application/json")
            }
            switch type {
            case .repeated(let element):
                if lists[name] == nil { order.append(name) }
                lists[name, default: []].append(try value(&reader, element, wireType, path: "\(path).\(name)"))
            case .map(let valueType):
                var entry = Reader(bytes: try reader.lengthDelimited())
                var key = ""
                var entryValue: JSONValue = .null
                while let (field, entryWire) = try entry.tag() {
                    if field == 1 { key = try entry.string() }
                    else if field == 2 { entryValue = try value(&entry, valueType, entryWire, path: "\(path).\(name)") }
                    else { try entry.skip(entryWire) }
                }
                if maps[name] == nil { order.append(name) }
                maps[name, default: JSONObject()][key] = entryValue
            default:
                let decoded = try value(&reader, type, wireType, path: "\(path).\(name)")
                object[name] = decoded == .null ? nil : decoded
            }
        }
        for name in order {
            if let items = lists[name] { object[name] = .array(items) }
            if let map = maps[name] { object[name] = .object(map) }
        }
        return .object(object)
    }

    private static func value(_ reader: inout Reader, _ type: FieldType, _ wireType: Int, path: String) throws -> JSONValue {
        switch type {
        case .string:
            // Go writes unset optional strings as empty ones; absent is what they mean.
            let text = try reader.string()
            return text.isEmpty ? .null : .string(text)
        case .bytes: return .string(Data(try reader.lengthDelimited()).base64EncodedString())
        case .int64: return .integer(Int64(bitPattern: try reader.varint()))
        case .bool: return .bool(try reader.varint() != 0)
        case .plainInt:
            let number = Int64(bitPattern: try reader.varint())
            return number == 0 ? .null : .integer(number)
        case .plainBool: return try reader.varint() != 0 ? .bool(true) : .null
        case .time:
            var time = Reader(bytes: try reader.lengthDelimited())
            var seconds: Int64 = 0
            var nanos: Int32 = 0
            while let (field, fieldWire) = try time.tag() {
                if field == 1 { seconds = Int64(bitPattern: try time.varint()) }
                else if field == 2 { nanos = Int32(truncatingIfNeeded: try time.varint()) }
                else { try time.skip(fieldWire) }
            }
            guard (Timestamp.earliestRepresentable.seconds...Timestamp.latestRepresentable.seconds).contains(seconds), (0..<1_000_000_000).contains(nanos) else {
                throw APIError.badRequest("the time at \(path) is outside the years 0000-9999")
            }
            // Go writes an unset time as the zero one (which JSON writes as null).
            if seconds == 0 && nanos == 0 { return .null }
            return .string(Timestamp(seconds: seconds, nanoseconds: nanos).description)
        case .intOrString:
            var field = Reader(bytes: try reader.lengthDelimited())
            var isString = false
            var number: Int64 = 0
            var text = ""
            while let (tag, tagWire) = try field.tag() {
                switch tag {
                case 1: isString = try field.varint() == 1
                case 2: number = Int64(Int32(truncatingIfNeeded: try field.varint()))
                case 3: text = try field.string()
                default: try field.skip(tagWire)
                }
            }
            return isString ? .string(text) : .integer(number)
        case .message(let schema): return try message(try reader.lengthDelimited(), schema, path: path)
        case .map, .repeated: throw APIError.badRequest("nested protobuf collections at \(path) are not supported")
        }
    }

    /// A protobuf wire-format reader over a byte slice.
    struct Reader {
        var bytes: ArraySlice<UInt8>

        mutating func tag() throws -> (Int, Int)? {
            guard !bytes.isEmpty else { return nil }
            let key = try varint()
            return (Int(key >> 3), Int(key & 7))
        }

        mutating func varint() throws -> UInt64 {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while let byte = bytes.popFirst() {
                result |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return result }
                shift += 7
                if shift > 63 { break }
            }
            throw APIError.badRequest("truncated or malformed protobuf varint")
        }

        mutating func lengthDelimited() throws -> ArraySlice<UInt8> {
            let length = Int(clamping: try varint())
            guard length <= bytes.count else { throw APIError.badRequest("protobuf field longer than the body") }
            let value = bytes.prefix(length)
            bytes = bytes.dropFirst(length)
            return value
        }

        mutating func string() throws -> String { String(decoding: try lengthDelimited(), as: UTF8.self) }

        mutating func skip(_ wireType: Int) throws {
            switch wireType {
            case 0: _ = try varint()
            case 1: guard bytes.count >= 8 else { throw APIError.badRequest("truncated protobuf") }; bytes = bytes.dropFirst(8)
            case 2: _ = try lengthDelimited()
            case 5: guard bytes.count >= 4 else { throw APIError.badRequest("truncated protobuf") }; bytes = bytes.dropFirst(4)
            default: throw APIError.badRequest("unsupported protobuf wire type \(wireType)")
            }
        }
    }
}
