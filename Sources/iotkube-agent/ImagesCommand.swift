import Agent
import ArgumentParser
import ImageStore
import KubeModel
import OCI
import SystemSupport

/// `iotkube-agent images …`: the image store the pods use.
struct ImagesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "images", abstract: "Pull, import, list and remove images in the agent's image store.",
        subcommands: [ImagesPullCommand.self, ImagesImportCommand.self, ImagesListCommand.self, ImagesRemoveCommand.self, ImagesPruneCommand.self]
    )
}

/// Options every `images` verb shares: where the store is and how registries are reached.
struct ImageStoreOptions: ParsableArguments {
    @Option(help: "The agent configuration (registry settings and state directory are read from it when it exists).")
    var config = "/etc/iotkube/agent.yaml"

    @Option(help: "The agent's state directory holding the store (default: stateDir of the config, else /var/lib/iotkube).")
    var root: String?

    @Option(help: ArgumentHelp("How layers are stored: overlay (layer directories) or flattened (one tree per image).", visibility: .hidden))
    var unpackMode: String?

    func agentConfiguration() throws -> AgentConfiguration? {
        guard (try? AtomicFile.read(config)) != nil else { return nil }
        // Only the registry and state settings matter here; a not-yet-joined board has none.
        return try AgentConfiguration.load(config)
    }

    func openStore() throws -> ImageStore {
        let mode: UnpackMode?
        switch unpackMode {
        case nil: mode = nil
        case let text?:
            guard let parsed = UnpackMode(rawValue: text) else { throw ValidationError("--unpack-mode must be overlay or flattened") }
            mode = parsed
        }
        let configured = root == nil ? try agentConfiguration()?.stateDir : nil
        let stateDirectory = root ?? configured ?? "/var/lib/iotkube"
        return try ImageStore(stateDirectory: stateDirectory, unpackMode: mode)
    }
}

struct ImagesPullCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pull", abstract: "Pull an image for this board (or --platform).")

    @Argument(help: "The image, e.g. busybox:1.36 or registry.local:5000/app@sha256:…")
    var reference: String

    @Option(help: "Pull for another platform, os/arch[/variant] (e.g. linux/arm/v7).")
    var platform: String?

    @Option(name: .customLong("insecure-registry"), help: "A registry (host:port) reached over HTTP or unverified TLS; repeatable.")
    var insecureRegistries: [String] = []

    @Option(help: "Registry credentials (Docker config.json format).")
    var authFile: String?

    @Option(help: "Seconds a registry may take to connect or to send the next bytes.")
    var timeout: Int64 = 30

    @OptionGroup var store: ImageStoreOptions

    func run() async throws {
        let imageStore = try store.openStore()
        var agent = try store.agentConfiguration() ?? AgentConfiguration()
        if let authFile { agent.registryAuthFile = authFile }
        var registry = try agent.registryConfiguration()
        registry.insecureRegistries.formUnion(insecureRegistries)
        registry.timeoutSeconds = timeout
        let reference = try ImageReference(parsing: self.reference)
        let platform = try self.platform.map { try Platform(parsing: $0) }
        let result = try await imageStore.pull(reference, platform: platform, registry: registry) { message in
            printToStandardError(message)
        }
        let image = result.image
        if !result.report.droppedDevices.isEmpty {
            printToStandardError("warning: dropped \(result.report.droppedDevices.count) device node(s): \(result.report.droppedDevices.prefix(5).joined(separator: ", "))")
        }
        if !result.report.clearedSetuid.isEmpty {
            printToStandardError("warning: cleared setuid/setgid on \(result.report.clearedSetuid.count) file(s): \(result.report.clearedSetuid.prefix(5).joined(separator: ", "))")
        }
        print("Pulled \(reference) (\(image.platform)) image \(image.id) from \(result.resolvedDigest): \(image.layers.count) layers (\(result.reusedLayers) already present), \(result.downloadedBytes) bytes downloaded, \(image.size) bytes on disk")
    }
}

struct ImagesImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import images from archives: docker save tarballs or OCI archives, gzip or zstd compressed or not.",
        discussion: "Each image is checked as a pulled one is. Images need a name in the archive (docker save NAME:TAG, skopeo copy … oci-archive:FILE:NAME:TAG). Pods with imagePullPolicy IfNotPresent then start without a registry. Archives in the pre-load directory (imagePreloadDirectory, default <stateDir>/images-preload) are imported and pinned by the agent itself."
    )

    @Argument(help: "The archive files.")
    var files: [String]

    @Option(help: "Import for another platform, os/arch[/variant] (e.g. linux/arm/v7).")
    var platform: String?

    @Flag(help: "Keep the images from garbage collection and prune (as pre-loaded ones are).")
    var pin = false

    @OptionGroup var store: ImageStoreOptions

    func run() async throws {
        let imageStore = try store.openStore()
        let platform = try self.platform.map { try Platform(parsing: $0) }
        var failed = false
        for file in files {
            do {
                let report = try await imageStore.importArchive(file, platform: platform, pin: pin) { message in printToStandardError(message) }
                for skipped in report.skipped { printToStandardError("\(file): skipped \(skipped)") }
                for moved in report.movedTags { printToStandardError("\(file): the tag \(moved) now names the imported image") }
                for failure in report.failures { printToStandardError("iotkube-agent: \(failure)") }
                if !report.failures.isEmpty { failed = true }
                for imported in report.images {
                    let image = imported.result.image
                    print("Imported \(imported.names.joined(separator: ", ")) (\(image.platform)) image \(image.id) from \(file): \(image.layers.count) layers (\(imported.result.reusedLayers) already present), \(image.size) bytes on disk\(pin ? ", pinned" : "")")
                }
            } catch {
                printToStandardError("iotkube-agent: \(error)")
                failed = true
            }
        }
        if failed { throw ExitCode.failure }
    }
}

struct ImagesListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List the images in the store.")

    @Flag(help: "Print the records as JSON.")
    var json = false

    @OptionGroup var store: ImageStoreOptions

    func run() async throws {
        let images = try store.openStore().images()
        if json {
            print(String(decoding: try KubeJSON.encode(images, pretty: true), as: UTF8.self))
            return
        }
        var rows = [["IMAGE", "IMAGE ID", "PLATFORM", "SIZE", "IN USE"]]
        for image in images {
            let names = image.names.isEmpty ? ["<none>"] : image.names
            for name in names {
                rows.append([name, image.id.short, image.platform, Self.humanSize(image.size), image.inUse ? "yes" : image.isPinned ? "pinned" : ""])
            }
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            print(row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count + 3)
            }.joined())
        }
    }

    static func humanSize(_ bytes: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1000 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        let rounded = (value * 10).rounded() / 10
        return unit == 0 ? "\(bytes)B" : "\(rounded)\(units[unit])"
    }
}

struct ImagesRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove an image (by reference or ID); a tag shared with others is only untagged.")

    @Argument(help: "Images to remove.")
    var references: [String]

    @Flag(help: "Remove even when a pod uses it.")
    var force = false

    @OptionGroup var store: ImageStoreOptions

    func run() async throws {
        let imageStore = try store.openStore()
        for reference in references {
            let report = try imageStore.remove(reference, force: force)
            for name in report.untagged { print("Untagged: \(name)") }
            for id in report.removedImages { print("Deleted: \(id)") }
        }
    }
}

struct ImagesPruneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "prune", abstract: "Remove untagged images (with --all: every image no pod uses) and leftover data.")

    @Flag(help: "Remove every image not in use, not only untagged ones.")
    var all = false

    @OptionGroup var store: ImageStoreOptions

    func run() async throws {
        let report = try store.openStore().prune(all: all)
        for id in report.removedImages { print("Deleted: \(id)") }
        print("Total reclaimed space: \(ImagesListCommand.humanSize(report.freedBytes))")
    }
}
