import IotkubeTestSupport
import Testing
@testable import KubeModel

/// Canonical forms and values; the expectations are the behaviour of Kubernetes' own
/// resource.Quantity (parse, then String()).
struct QuantityTests {
    static let canonical: [(input: String, output: String)] = [
        ("0", "0"), ("0n", "0"), ("0u", "0"), ("0m", "0"), ("0Ki", "0"), ("0k", "0"), ("0Mi", "0"), ("0Ti", "0"),
        ("1", "1"), ("1Ki", "1Ki"), ("8Ki", "8Ki"), ("7Mi", "7Mi"), ("6Gi", "6Gi"), ("5Ti", "5Ti"), ("4Pi", "4Pi"),
        ("3Ei", "3Ei"), ("10Ti", "10Ti"), ("100Ti", "100Ti"),
        ("5n", "5n"), ("4u", "4u"), ("3m", "3m"), ("9", "9"), ("8k", "8k"), ("50k", "50k"), ("7M", "7M"),
        ("6G", "6G"), ("5T", "5T"), ("40T", "40T"), ("300T", "300T"), ("2P", "2P"), ("1E", "1E"),
        ("1E-3", "1e-3"), ("1e3", "1e3"), ("1E6", "1e6"), ("1e9", "1e9"), ("1E12", "1e12"), ("1e15", "1e15"),
        ("1E18", "1e18"), ("1e14", "100e12"), ("1e13", "10e12"), ("100.035k", "100035"),
        ("0.001", "1m"), ("0.0005k", "500m"), ("0.005", "5m"), ("0.05", "50m"), ("0.5", "500m"),
        ("0.00050k", "500m"), ("0.00500", "5m"), ("0.05000", "50m"), ("0.50000", "500m"),
        ("0.5e0", "500e-3"), ("0.5e-1", "50e-3"), ("0.5e-2", "5e-3"), ("10.035M", "10035k"),
        ("1.2e3", "1200"), ("1.3E+6", "1300e3"), ("1.40e9", "1400e6"), ("1.53E12", "1530e9"),
        ("1.6e15", "1600e12"), ("1.7E18", "1700e15"),
        ("9.01", "9010m"), ("8.1k", "8100"), ("7.123456M", "7123456"), ("6.987654321G", "6987654321"),
        ("5.444T", "5444G"), ("40.1T", "40100G"), ("300.2T", "300200G"), ("2.5P", "2500T"), ("1.01E", "1010P"),
        // Saturation and rounding up to 1n.
        ("3.001n", "4n"), ("1.1E-9", "2e-9"), ("0.0000000001", "1n"), ("0.0000000005", "1n"),
        ("0.00000000050", "1n"), ("0.5e-9", "1e-9"), ("0.9n", "1n"), ("0.00000012345", "124n"),
        ("0.00000012354", "124n"), ("9Ei", "9223372036854775807"), ("9223372036854775807Ki", "9223372036854775807"),
        ("12E", "12E"),
        // Fractional binary values.
        ("100.035Ki", "102435840m"), ("0.5Mi", "512Ki"), ("0.05Gi", "53687091200m"), ("0.025Ti", "27487790694400m"),
        ("0.000000000001Ki", "2n"), (".001", "1m"), (".0001k", "100m"), ("1.", "1"), ("1.G", "1G"),
        // Canonical re-emission.
        ("1024Mi", "1Gi"), ("1000M", "1G"), (".001Ki", "1024m"), (".000001Ki", "1024u"), (".000000001Ki", "1024n"),
        (".000000000001Ki", "2n"), ("1.5", "1500m"), ("1.5Gi", "1536Mi"), ("1025Ki", "1025Ki"), ("1536", "1536"),
        ("1000E", "1e21"), ("5000E", "5e21"), ("1000000E", "1e24"), ("1080m", "1080m"), ("1.08", "1080m"),
        ("1080000000n", "1080m"), ("300Mi", "300Mi"), ("307200Ki", "300Mi"), ("1025024Mi", "1001Gi"),
        ("5000m", "5"), ("500m", "500m"), ("1000u", "1m"), ("0.001T", "1G"), ("1000e-12", "1e-9"), ("80e-3", "80e-3"),
        ("300e6", "300e6"), ("00", "0"), (".001e12", "1e9"), ("0.001e0", "1e-3"), ("+1.5", "1500m"),
        // Binary below 1024 and fractional binary fall back to decimal SI.
        ("0.5Ki", "512"), ("1.1Ki", "1126400m"),
    ]

    @Test func canonicalFormMatchesKubernetes() throws {
        for (input, output) in Self.canonical {
            let quantity = try Quantity(parsing: input)
            #expect(quantity.description == output, "\(input)")
            // The canonical form parses back to the same value and prints itself.
            let reparsed = try Quantity(parsing: quantity.description)
            #expect(reparsed == quantity, "\(input)")
            #expect(reparsed.description == output, "\(input)")
            if !quantity.isZero {
                let negative = try Quantity(parsing: "-" + (input.hasPrefix("+") ? String(input.dropFirst()) : input))
                #expect(negative.description == "-" + output, "-\(input)")
            }
        }
    }

    @Test func invalidInputsAreRejectedWithReason() throws {
        let invalid = ["1.1.M", "1+1.0M", "0.1mi", "0.1am", "aoeu", ".5i", "1i", "-3.01i", "-3.01e-", " 1", "1 ", "",
                       "12Qi", "1K", "1KiB", "1e", "1e+", "--1", "1.5.5", "0x10"]
        for input in invalid {
            #expect(throws: QuantityError.self, "\(input)") { try Quantity(parsing: input) }
        }
        #expect(throws: QuantityError(input: "12Qi", reason: .unknownSuffix("Qi"))) { try Quantity(parsing: "12Qi") }
        #expect(throws: QuantityError(input: "1e40", reason: .outOfRange)) { try Quantity(parsing: "1e40") }
        #expect(throws: QuantityError(input: "1e999999999999", reason: .outOfRange)) { try Quantity(parsing: "1e999999999999") }
        // Tiny exponents round up to the smallest representable amount rather than to zero.
        #expect(try Quantity(parsing: "1e-999999999999").description == "1e-9")
    }

    @Test func conversionsRoundUpLikeKubernetes() throws {
        #expect(try Quantity(parsing: "100m").milliValue == 100)
        #expect(try Quantity(parsing: "1").milliValue == 1000)
        #expect(try Quantity(parsing: "1.5").milliValue == 1500)
        #expect(try Quantity(parsing: "0.0001").milliValue == 1)
        #expect(try Quantity(parsing: "100m").value == 1)
        #expect(try Quantity(parsing: "-100m").value == -1)
        #expect(try Quantity(parsing: "128Mi").byteCount == 134_217_728)
        #expect(try Quantity(parsing: "1G").byteCount == 1_000_000_000)
        #expect(try Quantity(parsing: "1e3").value == 1000)
        #expect(try Quantity(parsing: "12E").value == Int64.max)
        #expect(Quantity(milli: 1).description == "1m")
        #expect(Quantity(milli: 1000).description == "1")
        #expect(Quantity(milli: 1_234_000).description == "1234")
        #expect(Quantity(milli: 1024, format: .binarySI).description == "1024m")
        #expect(Quantity(1000).description == "1k")
        #expect(Quantity(1_234_000).description == "1234k")
        #expect(Quantity.bytes(1024).description == "1Ki")
        #expect(Quantity(1_000_000, format: .decimalExponent).description == "1e6")
        #expect(Quantity.bytes(1024 * 1024).description == "1Mi")
    }

    @Test func arithmeticIsExact() throws {
        let a = try Quantity(parsing: "100m")
        let b = try Quantity(parsing: "0.2")
        #expect((a + b).description == "300m")
        #expect((a - b).description == "-100m")
        #expect((try Quantity(parsing: "1Gi") - Quantity(parsing: "512Mi")).description == "512Mi")
        #expect(try Quantity(parsing: "0.1") + Quantity(parsing: "0.2") == Quantity(parsing: "0.3"))
        #expect(Quantity.zero + (try Quantity(parsing: "1Gi")) == (try Quantity(parsing: "1Gi")))
        #expect((Quantity.zero + (try Quantity(parsing: "1Gi"))).description == "1Gi")
        #expect(try Quantity(parsing: "250m") * 4 == Quantity(1))
        #expect(-(try Quantity(parsing: "1Ki")) == (try Quantity(parsing: "-1024")))
        #expect(try Quantity(parsing: "10000T") > Quantity(parsing: "100Gi"))
        #expect(try Quantity(parsing: "50m") < Quantity(parsing: "100m"))
        #expect(try Quantity(parsing: "1Gi") == Quantity(parsing: "1073741824"))
        let big = try Quantity(parsing: "1e28")
        #expect(big.addingReportingOverflow(big) != nil)
        let huge = Quantity(nanoUnits: Int128.max - 1)
        #expect(huge.addingReportingOverflow(huge) == nil)
    }

    /// Property: for random decimal strings, parse → print → parse is the identity on values,
    /// and the printed form has no fractional part.
    @Test func randomRoundTrips() throws {
        var generator = SeededGenerator(seed: 0x5eed)
        let suffixes = ["", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "e3", "e-3", "e7"]
        for _ in 0..<5000 {
            let integer = String(UInt64.random(in: 0...999_999, using: &generator))
            let fraction = Bool.random(using: &generator) ? "." + String(UInt64.random(in: 0...999, using: &generator)) : ""
            let sign = ["", "-", "+"].randomElement(using: &generator)!
            let text = sign + integer + fraction + suffixes.randomElement(using: &generator)!
            let quantity = try Quantity(parsing: text)
            let printed = quantity.description
            #expect(!printed.contains("."), "\(text) → \(printed)")
            #expect(try Quantity(parsing: printed) == quantity, "\(text) → \(printed)")
        }
    }
}

