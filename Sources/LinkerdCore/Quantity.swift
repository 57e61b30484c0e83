/// A Kubernetes resource quantity, such as `100m`, `0.5`, `64Mi`, `1G` or `1e3`.
///
/// The syntax is Kubernetes': an optional sign, a decimal number (`1`, `1.5`, `.5`), then an optional suffix, one
/// of the binary `Ki` `Mi` `Gi` `Ti` `Pi` `Ei` (powers of 1024), the decimal `n` `u` `m` `k` `M` `G` `T` `P` `E`
/// (powers of 1000), or a decimal exponent `e<n>` / `E<n>` (`1e3`, `5E-2`). Whitespace is not allowed.
///
/// A quantity keeps the text it was parsed from as its ``description``, so two quantities are equal when written
/// identically; compare ``milliValue`` to compare amounts (`1Gi` and `1024Mi` are equal amounts).
public struct Quantity: Hashable, Sendable, CustomStringConvertible, Codable {
    /// The text the quantity was parsed from, unchanged.
    public let description: String
    /// The amount, rounded away from zero to a whole number as Kubernetes' `Quantity.Value()` does (`100m` is 1,
    /// `-100m` is -1), and clamped to the range of `Int64`.
    public let value: Int64
    /// The amount in thousandths, rounded away from zero as Kubernetes' `Quantity.MilliValue()` does (`0.5` is 500,
    /// `1u` is 1), and clamped to the range of `Int64`.
    public let milliValue: Int64

    /// Parses a quantity.
    ///
    /// - Throws: ``ParseError`` when the string is empty, has no digits, has a second decimal point, or ends in an
    ///   unknown suffix, an exponent without digits, or an exponent beyond ±2³¹.
    public init(parsing string: String) throws(ParseError) {
        func failure(_ reason: String) -> ParseError {
            ParseError(value: string, expected: "quantity", reason: reason)
        }
        let bytes = Array(string.utf8)
        guard !bytes.isEmpty else {
            throw failure("it is empty")
        }
        var index = 0
        let negative = bytes[0] == UInt8(ascii: "-")
        if negative || bytes[0] == UInt8(ascii: "+") {
            index += 1
        }
        var digits: [UInt8] = []
        var fractionDigitCount = 0
        func takeDigits() -> Int {
            let start = index
            while index < bytes.count, let digit = Self.digitValue(bytes[index]) {
                digits.append(digit)
                index += 1
            }
            return index - start
        }
        _ = takeDigits()
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            fractionDigitCount = takeDigits()
        }
        let suffix = String(decoding: bytes[index...], as: UTF8.self)
        guard !digits.isEmpty else {
            throw failure(suffix.isEmpty ? "it has no digits" : "it has no number before \(suffix.quoted)")
        }
        if suffix.hasPrefix(".") {
            throw failure("it has more than one decimal point")
        }
        let (decimalExponent, binaryExponent) = try Self.exponents(ofSuffix: suffix, in: string)

        self.description = string
        let significand = Natural(decimalDigits: digits.drop { $0 == 0 })
        let exponent = decimalExponent - fractionDigitCount
        value = Self.rounded(negative, significand, binaryExponent, exponent)
        milliValue = Self.rounded(negative, significand, binaryExponent, exponent + 3)
    }

    /// Decodes a quantity written as a string, or as a JSON number as Kubernetes also accepts.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let integer = try? container.decode(Int64.self) {
            try self.init(parsing: String(integer))
        } else if let number = try? container.decode(Double.self), number.isFinite {
            try self.init(parsing: String(number))
        } else {
            self = try StringCoding.decode(from: decoder, Self.init(parsing:))
        }
    }

    /// Encodes the quantity as its original text.
    public func encode(to encoder: any Encoder) throws {
        try StringCoding.encode(self, to: encoder)
    }

    private static let suffixes: [String: (decimal: Int, binary: Int)] = [
        "": (0, 0),
        "n": (-9, 0), "u": (-6, 0), "m": (-3, 0),
        "k": (3, 0), "M": (6, 0), "G": (9, 0), "T": (12, 0), "P": (15, 0), "E": (18, 0),
        "Ki": (0, 10), "Mi": (0, 20), "Gi": (0, 30), "Ti": (0, 40), "Pi": (0, 50), "Ei": (0, 60),
    ]

    private static let suffixNames = "n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or an exponent such as e3"

    private static func digitValue(_ byte: UInt8) -> UInt8? {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) ? byte - UInt8(ascii: "0") : nil
    }

    /// The power of ten and the power of two that `suffix` multiplies by.
    ///
    /// - Throws: ``ParseError`` about `string` when `suffix` is not a suffix.
    private static func exponents(
        ofSuffix suffix: String,
        in string: String
    ) throws(ParseError) -> (decimal: Int, binary: Int) {
        func failure(_ reason: String) -> ParseError {
            ParseError(value: string, expected: "quantity", reason: reason)
        }
        if let exponents = suffixes[suffix] {
            return exponents
        }
        guard let marker = suffix.first, marker == "e" || marker == "E" else {
            throw failure("unknown suffix \(suffix.quoted); expected \(suffixNames)")
        }
        var exponent = suffix.dropFirst()
        let negative = exponent.first == "-"
        if negative || exponent.first == "+" {
            exponent = exponent.dropFirst()
        }
        guard !exponent.isEmpty else {
            throw failure("the exponent \(suffix.quoted) has no digits")
        }
        guard exponent.isASCIIDigits else {
            throw failure("unknown suffix \(suffix.quoted); expected \(suffixNames)")
        }
        guard let magnitude = Int32(exponent) else {
            throw failure("the exponent \(suffix.quoted) is out of range")
        }
        return (negative ? -Int(magnitude) : Int(magnitude), 0)
    }

    /// `significand × 2^binaryExponent × 10^decimalExponent`, negated when `negative`, rounded away from zero and
    /// clamped to `Int64`.
    private static func rounded(
        _ negative: Bool,
        _ significand: Natural,
        _ binaryExponent: Int,
        _ decimalExponent: Int
    ) -> Int64 {
        guard !significand.isZero else {
            return 0
        }
        let limit = negative ? Int64.min.magnitude : Int64.max.magnitude
        var magnitude = limit
        // A non-zero significand times 10^19 or more exceeds every Int64.
        if decimalExponent < 19 {
            var number = significand
            number.multiply(byPowerOfTwo: binaryExponent)
            var exponent = decimalExponent
            var inexact = false
            while exponent > 0 {
                number.multiply(by: 10)
                exponent -= 1
            }
            while exponent < 0, !number.isZero {
                if number.divide(by: 10) != 0 {
                    inexact = true
                }
                exponent += 1
            }
            if let whole = number.uint64, whole < limit {
                magnitude = inexact ? whole + 1 : whole
            }
        }
        return negative ? Int64(truncatingIfNeeded: 0 &- magnitude) : Int64(magnitude)
    }
}
