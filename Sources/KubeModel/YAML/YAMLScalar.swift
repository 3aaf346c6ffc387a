/// Resolution of YAML scalars to JSON values (the YAML 1.1 rules Kubernetes tooling applies).
enum YAMLScalar {
    struct Problem: Error {
        var message: String
    }

    static let nullWords: Set<String> = ["", "~", "null", "Null", "NULL"]
    static let trueWords: Set<String> = ["true", "True", "TRUE", "y", "Y", "yes", "Yes", "YES", "on", "On", "ON"]
    static let falseWords: Set<String> = ["false", "False", "FALSE", "n", "N", "no", "No", "NO", "off", "Off", "OFF"]

    /// The JSON value of a scalar with its tag (if any) and whether it was quoted or a block scalar.
    static func resolve(_ text: String, tag: String?, quoted: Bool) throws -> JSONValue {
        if let tag, tag != "!" {
            switch tag {
            case "tag:yaml.org,2002:str", "tag:yaml.org,2002:binary": return .string(text)
            case "tag:yaml.org,2002:null": return .null
            case "tag:yaml.org,2002:bool":
                if trueWords.contains(text) { return .bool(true) }
                if falseWords.contains(text) { return .bool(false) }
                throw Problem(message: "\"\(text)\" is not a boolean")
            case "tag:yaml.org,2002:int":
                guard let literal = integerLiteral(text) else { throw Problem(message: "\"\(text)\" is not an integer") }
                return .number(literal)
            case "tag:yaml.org,2002:float":
                if let literal = integerLiteral(text) ?? floatLiteral(text) { return .number(literal) }
                throw Problem(message: "\"\(text)\" is not a finite number")
            default:
                throw Problem(message: "unsupported tag \(tag)")
            }
        }
        if quoted || tag == "!" { return .string(text) }
        if nullWords.contains(text) { return .null }
        if trueWords.contains(text) { return .bool(true) }
        if falseWords.contains(text) { return .bool(false) }
        if let literal = integerLiteral(text) { return .number(literal) }
        if let literal = floatLiteral(text) { return .number(literal) }
        if [".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN"].contains(text) {
            throw Problem(message: "\(text) cannot be represented in JSON")
        }
        return .string(text)
    }

    /// A decimal literal for YAML 1.1 integers: decimal, `0x` hex, `0o`/leading-zero octal, `0b` binary, `_` separators.
    static func integerLiteral(_ text: String) -> String? {
        var body = Substring(text)
        var negative = false
        if body.first == "-" || body.first == "+" {
            negative = body.first == "-"
            body = body.dropFirst()
        }
        guard !body.isEmpty, body.first != "_" else { return nil }
        let digits = body.replacingOccurrences("_", with: "")
        let radix: Int
        let magnitudeDigits: Substring
        if digits.hasPrefix("0x") {
            radix = 16
            magnitudeDigits = digits.dropFirst(2)
        } else if digits.hasPrefix("0o") {
            radix = 8
            magnitudeDigits = digits.dropFirst(2)
        } else if digits.hasPrefix("0b") {
            radix = 2
            magnitudeDigits = digits.dropFirst(2)
        } else if digits.count > 1, digits.hasPrefix("0") {
            radix = 8
            magnitudeDigits = digits.dropFirst(1)
        } else {
            guard digits.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
            return (negative && digits != "0" ? "-" : "") + digits
        }
        guard !magnitudeDigits.isEmpty else { return nil }
        // Arbitrary length: convert digit by digit into a decimal string.
        var decimal: [UInt8] = [0]  // little-endian base-10 digits
        for character in magnitudeDigits {
            guard let digit = character.hexDigitValue, digit < radix else { return nil }
            var carry = digit
            for index in decimal.indices {
                let value = Int(decimal[index]) * radix + carry
                decimal[index] = UInt8(value % 10)
                carry = value / 10
            }
            while carry > 0 {
                decimal.append(UInt8(carry % 10))
                carry /= 10
            }
        }
        while decimal.count > 1, decimal.last == 0 { decimal.removeLast() }
        let text = String(decimal.reversed().map { Character(Unicode.Scalar($0 + 48)) })
        return (negative && text != "0" ? "-" : "") + text
    }

    /// A JSON number literal for YAML floats such as `1.5`, `.5`, `1.`, `+2e3`, `1_000.5`.
    static func floatLiteral(_ text: String) -> String? {
        var body = Substring(text.replacingOccurrences("_", with: ""))
        var sign = ""
        if body.first == "-" || body.first == "+" {
            sign = body.first == "-" ? "-" : ""
            body = body.dropFirst()
        }
        var integer = Substring("")
        var fraction = Substring("")
        var exponent = Substring("")
        var rest = body
        integer = rest.prefix(while: \.isASCIIDigit)
        rest = rest.dropFirst(integer.count)
        if rest.first == "." {
            rest = rest.dropFirst()
            fraction = rest.prefix(while: \.isASCIIDigit)
            rest = rest.dropFirst(fraction.count)
        } else if rest.first != "e" && rest.first != "E" {
            return nil
        }
        guard !(integer.isEmpty && fraction.isEmpty) else { return nil }
        if rest.first == "e" || rest.first == "E" {
            rest = rest.dropFirst()
            var exponentSign = ""
            if rest.first == "-" || rest.first == "+" {
                exponentSign = rest.first == "-" ? "-" : ""
                rest = rest.dropFirst()
            }
            let digits = rest.prefix(while: \.isASCIIDigit)
            guard !digits.isEmpty else { return nil }
            rest = rest.dropFirst(digits.count)
            exponent = Substring("e" + exponentSign + digits)
        }
        guard rest.isEmpty else { return nil }
        var integerPart = String(integer.drop(while: { $0 == "0" }))
        if integerPart.isEmpty { integerPart = "0" }
        return sign + integerPart + (fraction.isEmpty ? "" : "." + fraction) + exponent
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

extension StringProtocol {
    func replacingOccurrences(_ target: Character, with replacement: String) -> String {
        var result = ""
        for character in self {
            if character == target { result += replacement } else { result.append(character) }
        }
        return result
    }
}
