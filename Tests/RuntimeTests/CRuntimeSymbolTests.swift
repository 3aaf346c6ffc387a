import Foundation
import IotkubeTestSupport
import Testing

/// The C runtime links statically into one binary with other C libraries: its own symbols carry
/// the `iotkube_` prefix (no `fail` or `write_all` to clash with), and only the ones its public
/// header declares are visible outside the object files.
@Suite(.ownThread, .enabled(if: ServerProcess.findExecutable("readelf") != nil || ProcessInfo.processInfo.environment["CI"] != nil, "needs readelf (binutils)"))
struct CRuntimeSymbolTests {
    static let objects = ServerProcess.buildDirectory.appendingPathComponent("CRuntime.build")
    static let header = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../../Sources/CRuntime/include/cruntime.h").standardized

    @Test func everySymbolIsPrefixedAndOnlyThePublicOnesAreVisible() throws {
        let header = try String(contentsOf: Self.header, encoding: .utf8)
        let public_ = Set(header.matches(of: /(iotkube_\w+)\s*\(/).map { String($0.1) })
        #expect(public_.contains("iotkube_runtime_linked"), "\(public_)")
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.objects.path).filter { $0.hasSuffix(".o") }
        #expect(files.count >= 7, "\(files)")
        var defined = 0
        for file in files {
            let table = try ServerProcess.run("/usr/bin/readelf", ["-sW", Self.objects.appendingPathComponent(file).path])
            #expect(table.status == 0, "\(table.output)")
            // Num: Value Size Type Bind Vis Ndx Name
            for line in table.output.split(separator: "\n") {
                let fields = line.split(separator: " ", omittingEmptySubsequences: true)
                guard fields.count == 8, fields[4] == "GLOBAL", fields[6] != "UND" else { continue }
                let name = String(fields[7])
                defined += 1
                #expect(name.hasPrefix("iotkube_"), "\(file): \(name) has no iotkube_ prefix")
                if !public_.contains(name) {
                    #expect(fields[5] == "HIDDEN", "\(file): \(name) is internal but \(fields[5])")
                }
            }
        }
        #expect(defined >= 20, "only \(defined) symbols found: not the runtime's objects?")
    }
}
