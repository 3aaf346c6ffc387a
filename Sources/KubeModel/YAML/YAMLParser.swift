import CYAML

/// Parses a YAML stream into JSON trees with libyaml, resolving plain scalars the way
/// Kubernetes tooling does (YAML 1.1 core types: `0644` is octal, `yes` is a boolean).
///
/// Anchors and aliases are supported with a budget on the expanded size, so a "billion laughs"
/// document fails cleanly instead of exhausting memory; nesting depth is limited likewise, and an
/// alias counts with the depth of what it expands to (an anchor nested inside another cannot
/// build a tree deeper than the limit).
struct YAMLParser {
    static let maximumDepth = 256
    /// The most nodes a stream may expand to through aliases.
    static let maximumExpandedNodes = 1_000_000

    private let parser: UnsafeMutablePointer<yaml_parser_t>
    private let event: UnsafeMutablePointer<yaml_event_t>
    private var anchors: [String: (value: JSONValue, size: Int, height: Int)] = [:]
    private var expandedNodes = 0
    private var depth = 0
    /// The nesting levels of the node ``node()`` returned last (0 for a scalar).
    private var lastHeight = 0
    /// While recording: the field path of the node being read and the line of every path seen.
    private var path = ""
    private var lines: [String: Int]?

    /// The 1-based line of every field of the first document (`devices[1].paths[0]` → 7), in the
    /// field-path notation of ``KubeDecodingError``; empty when the text does not parse.
    static func lines(_ bytes: [UInt8]) -> [String: Int] {
        bytes.withUnsafeBufferPointer { buffer in
            guard let parser = iotkube_yaml_parser_new(buffer.baseAddress, buffer.count) else { return [:] }
            defer { iotkube_yaml_parser_free(parser) }
            guard let event = iotkube_yaml_event_new() else { return [:] }
            defer { iotkube_yaml_event_free(event) }
            var state = YAMLParser(parser: parser, event: event)
            state.lines = [:]
            guard (try? state.documents()) != nil else { return [:] }
            return state.lines ?? [:]
        }
    }

    private var line: Int { Int(event.pointee.start_mark.line) + 1 }

    /// Reads the node at `child` of the current path, recording its line.
    private mutating func node(at child: String, line: Int) throws(KubeDecodingError) -> JSONValue {
        guard lines != nil else { return try node() }
        if lines?[child] == nil { lines?[child] = line }
        let saved = path
        path = child
        defer { path = saved }
        return try node()
    }

    /// Parses every document of `bytes`; empty documents are skipped.
    static func parseStream(_ bytes: [UInt8]) throws(KubeDecodingError) -> [JSONValue] {
        let result: Result<[JSONValue], KubeDecodingError> = bytes.withUnsafeBufferPointer { buffer in
            guard let parser = iotkube_yaml_parser_new(buffer.baseAddress, buffer.count) else {
                return .failure(KubeDecodingError(kind: .syntax, path: "", message: "cannot allocate a YAML parser"))
            }
            defer { iotkube_yaml_parser_free(parser) }
            guard let event = iotkube_yaml_event_new() else {
                return .failure(KubeDecodingError(kind: .syntax, path: "", message: "cannot allocate a YAML event"))
            }
            defer { iotkube_yaml_event_free(event) }
            var state = YAMLParser(parser: parser, event: event)
            do throws(KubeDecodingError) {
                return .success(try state.documents())
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private init(parser: UnsafeMutablePointer<yaml_parser_t>, event: UnsafeMutablePointer<yaml_event_t>) {
        self.parser = parser
        self.event = event
    }

    private mutating func documents() throws(KubeDecodingError) -> [JSONValue] {
        try next()
        guard event.pointee.type == YAML_STREAM_START_EVENT else { throw error("expected the start of a stream") }
        var documents: [JSONValue] = []
        while true {
            try next()
            switch event.pointee.type {
            case YAML_STREAM_END_EVENT:
                return documents
            case YAML_DOCUMENT_START_EVENT:
                anchors = [:]
                try next()
                let document = try node()
                try next()
                guard event.pointee.type == YAML_DOCUMENT_END_EVENT else { throw error("expected the end of a document") }
                if document != .null { documents.append(document) }
            default:
                throw error("expected a document")
            }
        }
    }

    /// Builds the node that starts with the current event.
    private mutating func node() throws(KubeDecodingError) -> JSONValue {
        switch event.pointee.type {
        case YAML_ALIAS_EVENT:
            let name = Self.string(event.pointee.data.alias.anchor) ?? ""
            guard let anchored = anchors[name] else { throw error("unknown alias *\(name)") }
            if depth + anchored.height > Self.maximumDepth { throw error("alias *\(name) nests deeper than \(Self.maximumDepth) levels") }
            try count(anchored.size)
            lastHeight = anchored.height
            return anchored.value
        case YAML_SCALAR_EVENT:
            let scalar = event.pointee.data.scalar
            let text = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
            let tag = Self.string(scalar.tag)
            let quoted = scalar.style != YAML_PLAIN_SCALAR_STYLE && scalar.style != YAML_ANY_SCALAR_STYLE
            let anchor = Self.string(scalar.anchor)
            let value: JSONValue
            do {
                value = try YAMLScalar.resolve(text, tag: tag, quoted: quoted)
            } catch let problem as YAMLScalar.Problem {
                throw error(problem.message)
            } catch {
                throw self.error("\(error)")
            }
            try count(1)
            if let anchor { anchors[anchor] = (value, 1, 0) }
            lastHeight = 0
            return value
        case YAML_SEQUENCE_START_EVENT:
            let anchor = Self.string(event.pointee.data.sequence_start.anchor)
            let before = expandedNodes
            try enter()
            var items: [JSONValue] = []
            var height = 1
            while true {
                try next()
                if event.pointee.type == YAML_SEQUENCE_END_EVENT { break }
                items.append(try node(at: "\(path)[\(items.count)]", line: line))
                height = max(height, lastHeight + 1)
            }
            depth -= 1
            try count(1)
            let value = JSONValue.array(items)
            if let anchor { anchors[anchor] = (value, expandedNodes - before, height) }
            lastHeight = height
            return value
        case YAML_MAPPING_START_EVENT:
            let anchor = Self.string(event.pointee.data.mapping_start.anchor)
            let before = expandedNodes
            try enter()
            let (members, height) = try mapping()
            let value = JSONValue.object(members)
            depth -= 1
            try count(1)
            if let anchor { anchors[anchor] = (value, expandedNodes - before, height) }
            lastHeight = height
            return value
        default:
            throw error("expected a value")
        }
    }

    /// The members of a mapping, after the MAPPING-START event, and its nesting levels; handles
    /// `<<` merge keys.
    private mutating func mapping() throws(KubeDecodingError) -> (JSONObject, height: Int) {
        var object = JSONObject()
        var height = 1
        var merged = JSONObject()
        while true {
            try next()
            if event.pointee.type == YAML_MAPPING_END_EVENT { break }
            guard event.pointee.type == YAML_SCALAR_EVENT || event.pointee.type == YAML_ALIAS_EVENT else {
                throw error("a mapping key must be a scalar")
            }
            let isMergeKey = event.pointee.type == YAML_SCALAR_EVENT
                && event.pointee.data.scalar.style == YAML_PLAIN_SCALAR_STYLE
                && Self.scalarText(event.pointee.data.scalar) == "<<"
            let keyLine = line
            let key: String
            if event.pointee.type == YAML_SCALAR_EVENT {
                key = Self.scalarText(event.pointee.data.scalar)
            } else {
                guard case .string(let aliased) = try node() else { throw error("a mapping key must be a string") }
                key = aliased
            }
            try next()
            let value = try node(at: path.isEmpty ? key : path + "." + key, line: keyLine)
            height = max(height, lastHeight + 1)
            if isMergeKey {
                let sources: [JSONValue]
                switch value {
                case .object: sources = [value]
                case .array(let items): sources = items
                default: throw error("a merge key (<<) needs a mapping or a list of mappings")
                }
                for source in sources {
                    guard case .object(let members) = source else { throw error("a merge key (<<) needs mappings") }
                    for member in members where merged[member.key] == nil { merged[member.key] = member.value }
                }
                continue
            }
            if object[key] != nil { throw error("duplicate key \"\(key)\"") }
            object.appendUnchecked(key, value)
        }
        for member in merged where object[member.key] == nil { object.appendUnchecked(member.key, member.value) }
        return (object, height)
    }

    private mutating func next() throws(KubeDecodingError) {
        yaml_event_delete(event)
        guard yaml_parser_parse(parser, event) != 0 else {
            let problem = parser.pointee.problem.map { String(cString: $0) } ?? "malformed YAML"
            let mark = parser.pointee.problem_mark
            var message = "invalid YAML at line \(mark.line + 1), column \(mark.column + 1): \(problem)"
            if let context = parser.pointee.context.map({ String(cString: $0) }) { message += " (\(context))" }
            throw KubeDecodingError(kind: .syntax, path: "", message: message)
        }
    }

    private mutating func enter() throws(KubeDecodingError) {
        depth += 1
        if depth > Self.maximumDepth { throw error("nesting deeper than \(Self.maximumDepth) levels") }
    }

    private mutating func count(_ nodes: Int) throws(KubeDecodingError) {
        expandedNodes += nodes
        if expandedNodes > Self.maximumExpandedNodes {
            throw error("the document expands to more than \(Self.maximumExpandedNodes) nodes (alias bomb?)")
        }
    }

    private func error(_ message: String) -> KubeDecodingError {
        let mark = event.pointee.start_mark
        return KubeDecodingError(kind: .syntax, path: "", message: "invalid YAML at line \(mark.line + 1), column \(mark.column + 1): \(message)")
    }

    private static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        guard let pointer else { return nil }
        return String(cString: pointer)
    }

    private static func scalarText(_ scalar: yaml_event_t.__Unnamed_union_data.__Unnamed_struct_scalar) -> String {
        String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
    }
}
