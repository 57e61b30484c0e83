/// The pieces of the Prometheus text exposition format (version 0.0.4) that the proxy's metric families share.
enum PrometheusText {
    /// Appends a label value with the three characters the format escapes: backslash, double quote and line feed.
    ///
    /// The value is scanned as bytes first, since almost no value needs escaping; escaping walks Unicode scalars, not
    /// characters, so a line feed inside a `\r\n` grapheme is still found.
    static func appendEscapedLabelValue(_ value: String, to output: inout String) {
        let needsEscaping = value.utf8.contains { byte in
            byte == UInt8(ascii: "\\") || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\n")
        }
        guard needsEscaping else {
            output += value
            return
        }
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": output += #"\\"#
            case "\"": output += #"\""#
            case "\n": output += #"\n"#
            default: output.unicodeScalars.append(scalar)
            }
        }
    }

    /// Appends a family's `# HELP` and `# TYPE` lines.
    static func appendHeader(name: String, type: String, help: String, to output: inout String) {
        output += "# HELP "
        output += name
        output += " "
        output += help
        output += "\n# TYPE "
        output += name
        output += " "
        output += type
        output += "\n"
    }

    /// Appends one sample line, `name{labels} value`, without braces when there are no labels.
    static func appendSample(name: String, labels: String, value: String, to output: inout String) {
        output += name
        if !labels.isEmpty {
            output += "{"
            output += labels
            output += "}"
        }
        output += " "
        output += value
        output += "\n"
    }

    /// A duration in nanoseconds as a number of milliseconds, exactly: `1500000` is `1.5`, `2000000` is `2` (no
    /// `.0`), `1` is `0.000001`. Integer arithmetic keeps it free of floating-point rounding and exponents.
    static func milliseconds(nanoseconds: UInt64) -> String {
        let (whole, fraction) = nanoseconds.quotientAndRemainder(dividingBy: 1_000_000)
        guard fraction != 0 else { return String(whole) }
        var fractionDigits = String(fraction)
        fractionDigits = String(repeating: "0", count: 6 - fractionDigits.count) + fractionDigits
        while fractionDigits.last == "0" {
            fractionDigits.removeLast()
        }
        return "\(whole).\(fractionDigits)"
    }
}
