import Foundation
import LinkerdCore
import Testing

@Suite struct QuantityTests {
    @Test(arguments: [
        ("0", Int64(0), Int64(0)),
        ("000", 0, 0),
        ("0.0", 0, 0),
        ("0Mi", 0, 0),
        ("-0", 0, 0),
        ("1", 1, 1_000),
        ("+1", 1, 1_000),
        ("100m", 1, 100),
        ("1500m", 2, 1_500),
        ("0.5", 1, 500),
        (".5", 1, 500),
        ("1.", 1, 1_000),
        ("1.5", 2, 1_500),
        ("1.0000000001", 2, 1_001),
        ("1u", 1, 1),
        ("1n", 1, 1),
        ("2k", 2_000, 2_000_000),
        ("1M", 1_000_000, 1_000_000_000),
        ("1G", 1_000_000_000, 1_000_000_000_000),
        ("1T", 1_000_000_000_000, 1_000_000_000_000_000),
        ("1P", 1_000_000_000_000_000, 1_000_000_000_000_000_000),
        ("1E", 1_000_000_000_000_000_000, .max),
        ("1Ki", 1_024, 1_024_000),
        ("1.5Ki", 1_536, 1_536_000),
        ("0.1Ki", 103, 102_400),
        ("64Mi", 67_108_864, 67_108_864_000),
        ("1Gi", 1_073_741_824, 1_073_741_824_000),
        ("1Ti", 1_099_511_627_776, 1_099_511_627_776_000),
        ("1Pi", 1_125_899_906_842_624, 1_125_899_906_842_624_000),
        ("1Ei", 1_152_921_504_606_846_976, .max),
        ("8Ei", .max, .max),
        ("-8Ei", .min, .min),
        ("1e3", 1_000, 1_000_000),
        ("1E3", 1_000, 1_000_000),
        ("12e+2", 1_200, 1_200_000),
        ("5e-3", 1, 5),
        ("1e-9", 1, 1),
        ("1e-100", 1, 1),
        ("1e100", .max, .max),
        ("-1e100", .min, .min),
        ("9223372036854775807", .max, .max),
        ("9223372036854775806", 9_223_372_036_854_775_806, .max),
        ("-100m", -1, -100),
        ("-1.5", -2, -1_500),
        ("-1u", -1, -1),
        ("0.000000000000000000000000000001", 1, 1),
    ])
    func parsesQuantities(string: String, value: Int64, milliValue: Int64) throws {
        let quantity = try Quantity(parsing: string)
        #expect(quantity.value == value)
        #expect(quantity.milliValue == milliValue)
        #expect(quantity.description == string)
    }

    @Test(arguments: [
        ("", "it is empty"),
        ("-", "it has no digits"),
        ("+", "it has no digits"),
        (".", "it has no digits"),
        ("Mi", #"it has no number before "Mi""#),
        ("-Gi", #"it has no number before "Gi""#),
        (" 1", #"it has no number before " 1""#),
        ("1.2.3", "it has more than one decimal point"),
        ("12Q", #"unknown suffix "Q"; expected n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or an exponent"#),
        ("1K", #"unknown suffix "K""#),
        ("1mi", #"unknown suffix "mi""#),
        ("1 ", #"unknown suffix " ""#),
        ("1 Mi", #"unknown suffix " Mi""#),
        ("0x10", #"unknown suffix "x10""#),
        ("1e3.5", #"unknown suffix "e3.5""#),
        ("1e", #"the exponent "e" has no digits"#),
        ("1e+", #"the exponent "e+" has no digits"#),
        ("1E-", #"the exponent "E-" has no digits"#),
        ("1e99999999999", #"the exponent "e99999999999" is out of range"#),
    ])
    func rejectsMalformedQuantities(string: String, reason: String) {
        expectParseError(string, expected: "quantity", reason: reason) {
            try Quantity(parsing: string)
        }
    }

    @Test func equalityIsByWrittenForm() throws {
        let gibibyte = try Quantity(parsing: "1Gi")
        let mebibytes = try Quantity(parsing: "1024Mi")
        #expect(gibibyte != mebibytes)
        #expect(gibibyte.milliValue == mebibytes.milliValue)
        #expect(try gibibyte == Quantity(parsing: "1Gi"))
    }

    @Test func decodesStringsAndNumbers() throws {
        let decoded = try JSONDecoder().decode([Quantity].self, from: Data(#"["64Mi", 2, 0.5, "100m"]"#.utf8))
        #expect(decoded.map(\.description) == ["64Mi", "2", "0.5", "100m"])
        #expect(decoded.map(\.milliValue) == [67_108_864_000, 2_000, 500, 100])
        let encoded = try JSONEncoder().encode(decoded)
        #expect(String(decoding: encoded, as: UTF8.self) == #"["64Mi","2","0.5","100m"]"#)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([Quantity].self, from: Data(#"["12Q"]"#.utf8))
        }
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([Quantity].self, from: Data(#"[true]"#.utf8))
        }
    }
}
