#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import SystemSupport

/// Reads the CRI-format container logs the runtime writes
/// (`<directory>/<namespace>_<pod>_<uid>/<container>/<restart>.log`, lines
/// `<RFC3339Nano> <stream> <P|F> <text>`) the way `kubectl logs` asks for them: the current or
/// previous run, the last N lines, with or without timestamps, partial lines joined, and
/// followed as they grow.
public struct ContainerLogReader: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    /// What `kubectl logs` asks for.
    public struct Request: Sendable {
        public var namespace: String
        public var pod: String
        public var container: String
        public var previous = false
        public var tailLines: Int?
        public var timestamps = false
        public var limitBytes: Int?
        public var follow = false

        public init(namespace: String, pod: String, container: String) {
            self.namespace = namespace
            self.pod = pod
            self.container = container
        }

        /// From the query of `/containerLogs/<ns>/<pod>/<container>`.
        public init(namespace: String, pod: String, container: String, query: [String: String]) throws(LogError) {
            self.init(namespace: namespace, pod: pod, container: container)
            func flag(_ name: String) -> Bool { query[name] == "true" || query[name] == "1" }
            previous = flag("previous")
            timestamps = flag("timestamps")
            follow = flag("follow")
            if let text = query["tailLines"] {
                guard let value = Int(text), value >= 0 else { throw LogError(400, "tailLines must be a non-negative integer, not \"\(text)\"") }
                tailLines = value
            }
            if let text = query["limitBytes"] {
                guard let value = Int(text), value > 0 else { throw LogError(400, "limitBytes must be a positive integer, not \"\(text)\"") }
                limitBytes = value
            }
        }
    }

    public struct LogError: Error, CustomStringConvertible, Sendable {
        public var status: Int
        public var description: String
        init(_ status: Int, _ description: String) {
            self.status = status
            self.description = description
        }
    }

    /// The log file of the requested run.
    public func file(for request: Request) throws(LogError) -> String {
        let prefix = "\(request.namespace)_\(request.pod)_"
        // The newest pod of that name (a recreated pod has a new UID).
        let folders = FileTree.list(directory).filter { $0.hasPrefix(prefix) }.map { directory + "/" + $0 }
        guard let folder = folders.max(by: { Self.modified($0) < Self.modified($1) }) else {
            throw LogError(404, "pod \(request.namespace)/\(request.pod) has no logs on this node")
        }
        let runs = FileTree.list(folder + "/" + request.container).compactMap { name -> Int? in
            name.hasSuffix(".log") ? Int(name.dropLast(4)) : nil
        }.sorted()
        guard let current = runs.last else {
            throw LogError(400, "container \"\(request.container)\" in pod \"\(request.pod)\" has not started (or does not exist)")
        }
        if request.previous {
            guard runs.count >= 2 else {
                throw LogError(400, "previous terminated container \"\(request.container)\" in pod \"\(request.pod)\" not found")
            }
            return folder + "/" + request.container + "/\(runs[runs.count - 2]).log"
        }
        return folder + "/" + request.container + "/\(current).log"
    }

    static func size(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_size) : 0
    }

    static func modified(_ path: String) -> Int {
        var info = stat()
        return stat(path, &info) == 0 ? Int(info.st_mtim.tv_sec) : 0
    }

    /// The requested lines of `file` as `kubectl logs` prints them.
    public func read(_ request: Request, file: String) -> [UInt8] {
        let bytes = (try? AtomicFile.read(file)) ?? []
        var lines = Self.messages(bytes[...], timestamps: request.timestamps).lines
        if let tail = request.tailLines { lines = Array(lines.suffix(tail)) }
        var output = Self.joined(lines)
        if let limit = request.limitBytes, output.count > limit { output = Array(output.prefix(limit)) }
        return output
    }

    /// Complete messages of CRI lines (partial `P` lines joined to the next `F`), and the bytes
    /// consumed (an unfinished last line is left for later).
    static func messages(_ bytes: ArraySlice<UInt8>, timestamps: Bool) -> (lines: [[UInt8]], consumed: Int) {
        var lines: [[UInt8]] = []
        var partial: [UInt8] = []
        var consumed = 0
        var start = bytes.startIndex
        while let newline = bytes[start...].firstIndex(of: 0x0A) {
            let line = bytes[start..<newline]
            start = newline + 1
            let fields = line.split(separator: 0x20, maxSplits: 3, omittingEmptySubsequences: false)
            guard fields.count >= 3 else { continue }
            let text = fields.count == 4 ? Array(fields[3]) : []
            if fields[2].first == UInt8(ascii: "P") {
                if partial.isEmpty && timestamps { partial = Array(fields[0]) + [0x20] }
                partial += text
                continue
            }
            var message = partial
            if message.isEmpty && timestamps { message = Array(fields[0]) + [0x20] }
            message += text
            partial = []
            lines.append(message)
            consumed = start - bytes.startIndex
        }
        if partial.isEmpty { consumed = start - bytes.startIndex }
        return (lines, consumed)
    }

    /// Follows `file`: what is there (per the request), then new lines as they are written,
    /// until a newer run of the container starts, the pod's logs go, or `write` fails.
    public func follow(_ request: Request, file: String, write: @Sendable ([UInt8]) async throws -> Void) async throws {
        var offset = 0
        let initial = (try? AtomicFile.read(file)) ?? []
        let parsed = Self.messages(initial[...], timestamps: request.timestamps)
        var lines = parsed.lines
        if let tail = request.tailLines { lines = Array(lines.suffix(tail)) }
        if !lines.isEmpty { try await write(Self.joined(lines)) }
        offset = parsed.consumed
        let folder = String(file[..<file.lastIndex(of: "/")!])
        let current = Int(file[file.index(after: file.lastIndex(of: "/")!)...].dropLast(4)) ?? 0
        while !Task.isCancelled {
            try await Task.sleep(for: .milliseconds(250))
            guard FileTree.exists(file) else { return }
            // Rotation copies the file away and truncates it: read on from its new start.
            if Self.size(file) < offset { offset = 0 }
            let bytes = Self.read(file, from: offset)
            if !bytes.isEmpty {
                let more = Self.messages(bytes[...], timestamps: request.timestamps)
                if !more.lines.isEmpty { try await write(Self.joined(more.lines)) }
                offset += more.consumed
            }
            let newer = FileTree.list(folder).contains { name in name.hasSuffix(".log") && (Int(name.dropLast(4)) ?? 0) > current }
            if newer { return }
        }
    }

    static func joined(_ lines: [[UInt8]]) -> [UInt8] {
        var output: [UInt8] = []
        for line in lines {
            output += line
            output.append(0x0A)
        }
        return output
    }

    /// Up to 1 MiB of `path` from `offset` (what was appended since the last look).
    static func read(_ path: String, from offset: Int) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return [] }
        defer { close(descriptor) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, off_t(offset)) }
        return count > 0 ? Array(buffer.prefix(count)) : []
    }
}
