/// What the first bytes of a connection say about TLS: whether they are a TLS ClientHello, and which server name
/// (SNI) it asks for.
///
/// The inbound proxy uses the answer to decide whether to terminate mTLS (the SNI is its own identity), pass the
/// connection through (another SNI) or treat it as plaintext. The checks are upstream's, applied in order, and the
/// first that fails makes the bytes ``notTLS(reason:)``:
///
/// 1. every record is a handshake record (type `0x16`) with version `0x03 0x01` or `0x03 0x03`;
/// 2. the handshake message is a ClientHello (type `1`) shorter than 64 KiB (the high length byte is zero);
/// 3. its `client_version` is `0x03 0x03` (TLS 1.2, which TLS 1.3 ClientHellos also send);
/// 4. the random, session id, cipher suites and compression methods are skipped, and the extensions are scanned for
///    `server_name` (type `0`) and its first `host_name` entry (type `0`).
///
/// A record, the ClientHello or any of its vectors longer than ``maxVectorLength`` bytes is not TLS: the proxy's own
/// ClientHellos are a few hundred bytes, and a peer that sends more is not one to terminate. A vector that overruns
/// the structure containing it, or bytes left between the extensions and the end of the ClientHello, are not TLS
/// either.
///
/// A ClientHello split over several handshake records is reassembled (each record is checked as in 1). Bytes after
/// the ClientHello, in its last record or later, are ignored. Non-matching input is rejected as soon as the bytes
/// that contradict a check arrive, but a ClientHello is only reported once all of it has arrived, so every proper
/// prefix of a valid ClientHello is ``needMoreData``.
public enum TLSDetection: Hashable, Sendable {
    /// The bytes so far are a proper prefix of a ClientHello that passes every check; more are needed to decide.
    case needMoreData
    /// The bytes are not a ClientHello this proxy accepts. `reason` names the first failed check, for logs.
    case notTLS(reason: String)
    /// A complete ClientHello. `serverName` is its SNI host name in lowercase (a trailing dot kept), or `nil` when it
    /// has no `server_name` extension, no `host_name` entry, or a host name that is not a valid DNS name (see
    /// ``validServerName(_:)``).
    case clientHello(serverName: String?)

    /// The longest record, ClientHello or vector that can be TLS, and the most bytes detection buffers: 8192.
    public static let maxVectorLength = 8192

    /// Classifies `bytes`, the bytes received on a connection so far, from its first byte.
    ///
    /// Never reads outside `bytes`; truncated or arbitrary input gives ``needMoreData`` or ``notTLS(reason:)``.
    public static func detect(_ bytes: UnsafeRawBufferPointer) -> TLSDetection {
        var reader = ClientHelloReader(bytes: bytes)
        do throws(ClientHelloStop) {
            let hostName = try reader.readClientHello()
            return .clientHello(serverName: hostName.flatMap { validServerName($0) })
        } catch {
            switch error {
            case .needMoreData: return .needMoreData
            case .notTLS(let reason): return .notTLS(reason: reason)
            }
        }
    }

    /// Classifies `bytes` as the `UnsafeRawBufferPointer` overload does.
    public static func detect(_ bytes: some Collection<UInt8>) -> TLSDetection {
        if let result = bytes.withContiguousStorageIfAvailable({ detect(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        return Array(bytes).withUnsafeBytes { detect($0) }
    }

    /// The SNI host name in `bytes` as the proxy compares it with identities, or `nil` when it is not a valid DNS
    /// name.
    ///
    /// Valid means, as upstream's `dns::Name` (RFC 5280 §7.2 reference identifiers, with underscores allowed): ASCII
    /// labels of 1 to 63 letters, digits, `-` and `_`, not starting or ending with `-`, separated by dots; at most 253
    /// characters, not counting one optional trailing dot; and a last label that is not all digits (so an IPv4
    /// address is not a name). The result is lowercased.
    public static func validServerName(_ bytes: some BidirectionalCollection<UInt8>) -> String? {
        let dot = UInt8(ascii: ".")
        let name = bytes.last == dot ? bytes.dropLast() : bytes[...]
        guard !name.isEmpty, name.count <= 253 else { return nil }
        var lastLabelIsNumeric = true
        for label in name.split(separator: dot, omittingEmptySubsequences: false) {
            guard (1...63).contains(label.count), label.allSatisfy(isLabelByte),
                label.first != UInt8(ascii: "-"), label.last != UInt8(ascii: "-")
            else { return nil }
            lastLabelIsNumeric = label.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
        }
        guard !lastLabelIsNumeric else { return nil }
        return String(decoding: bytes, as: Unicode.ASCII.self).lowercased()
    }

    private static func isLabelByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default:
            false
        }
    }
}

/// Why ``ClientHelloReader`` stopped before the end of the ClientHello.
private enum ClientHelloStop: Error {
    case needMoreData
    case notTLS(String)
}

/// Reads the handshake byte stream carried in a run of TLS handshake records, checking each record header as it
/// reaches it, and parses the ClientHello at its start.
///
/// Offsets are positions in the handshake stream (record headers excluded); every vector's end is checked against
/// the end of the structure containing it before anything inside it is read.
private struct ClientHelloReader {
    private let bytes: UnsafeRawBufferPointer
    /// The index in `bytes` of the next unread byte.
    private var position = 0
    /// How many bytes of the current record's fragment are still unread; 0 before the first record.
    private var fragmentRemaining = 0
    /// How many records have been opened.
    private var recordCount = 0
    /// How many bytes of the handshake stream have been read or skipped.
    private var offset = 0

    init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Parses the ClientHello and returns the bytes of its first `host_name`, if it has one.
    mutating func readClientHello() throws(ClientHelloStop) -> [UInt8]? {
        let messageType = try readByte()
        guard messageType == 1 else {
            throw .notTLS("the handshake message type is \(messageType), not ClientHello (1)")
        }
        guard try readByte() == 0 else {
            throw .notTLS("the ClientHello is at least 65536 bytes long (its high length byte is not zero)")
        }
        let helloEnd = try vectorEnd(lengthBytes: 2, of: "ClientHello", within: Int.max)
        try require(2, before: helloEnd, for: "client_version")
        let major = try readByte()
        guard major == 0x03 else {
            throw .notTLS("the client_version major is \(hex(major)), not 0x03")
        }
        let minor = try readByte()
        guard minor == 0x03 else {
            throw .notTLS("the client_version minor is \(hex(minor)), not 0x03")
        }
        try require(32, before: helloEnd, for: "random")
        try skip(32)
        try skipVector(lengthBytes: 1, of: "session id", within: helloEnd)
        try skipVector(lengthBytes: 2, of: "cipher suites", within: helloEnd)
        try skipVector(lengthBytes: 1, of: "compression methods", within: helloEnd)
        guard offset < helloEnd else { return nil }  // No extensions: allowed before TLS 1.3.
        let extensionsEnd = try vectorEnd(lengthBytes: 2, of: "extensions", within: helloEnd)
        guard extensionsEnd == helloEnd else {
            throw .notTLS("the ClientHello continues for \(byteCount(helloEnd - extensionsEnd)) after its extensions")
        }
        var hostName: [UInt8]?
        while offset < extensionsEnd {
            try require(4, before: extensionsEnd, for: "extension header")
            let extensionType = try readUInt16()
            let extensionEnd = try vectorEnd(lengthBytes: 2, of: "extension", within: extensionsEnd)
            if extensionType == 0, hostName == nil {
                hostName = try readServerNameExtension(end: extensionEnd)
            } else {
                try skip(extensionEnd - offset)
            }
        }
        return hostName
    }

    /// Parses the body of a `server_name` extension that ends at `end`, returning its first `host_name`.
    private mutating func readServerNameExtension(end: Int) throws(ClientHelloStop) -> [UInt8]? {
        let listEnd = try vectorEnd(lengthBytes: 2, of: "server name list", within: end)
        guard listEnd == end else {
            throw .notTLS("the server_name extension continues for \(byteCount(end - listEnd)) after its list")
        }
        var hostName: [UInt8]?
        while offset < listEnd {
            try require(3, before: listEnd, for: "server name entry")
            let nameType = try readByte()
            let nameEnd = try vectorEnd(lengthBytes: 2, of: "server name", within: listEnd)
            if nameType == 0, hostName == nil {
                hostName = try readBytes(nameEnd - offset)
            } else {
                try skip(nameEnd - offset)
            }
        }
        return hostName
    }

    /// Reads a vector's length (1 or 2 bytes, big-endian) and returns the offset where the vector ends, after
    /// checking it against ``TLSDetection/maxVectorLength`` and against `enclosingEnd`.
    private mutating func vectorEnd(
        lengthBytes: Int,
        of name: String,
        within enclosingEnd: Int
    ) throws(ClientHelloStop) -> Int {
        try require(lengthBytes, before: enclosingEnd, for: "\(name) length")
        let length = lengthBytes == 1 ? Int(try readByte()) : try readUInt16()
        guard length <= TLSDetection.maxVectorLength else {
            throw .notTLS("the \(name) length is \(length), more than \(TLSDetection.maxVectorLength)")
        }
        guard length <= enclosingEnd - offset else {
            throw .notTLS("the \(name) length is \(length), but only \(byteCount(enclosingEnd - offset)) remain for it")
        }
        return offset + length
    }

    private mutating func skipVector(
        lengthBytes: Int,
        of name: String,
        within enclosingEnd: Int
    ) throws(ClientHelloStop) {
        let end = try vectorEnd(lengthBytes: lengthBytes, of: name, within: enclosingEnd)
        try skip(end - offset)
    }

    /// Throws unless `count` more bytes fit before `end`.
    private func require(
        _ count: Int,
        before end: Int,
        for field: @autoclosure () -> String
    ) throws(ClientHelloStop) {
        guard count <= end - offset else {
            throw .notTLS("only \(byteCount(end - offset)) remain for the \(field()), which takes \(count)")
        }
    }

    private mutating func readUInt16() throws(ClientHelloStop) -> Int {
        let high = try readByte()
        let low = try readByte()
        return Int(high) << 8 | Int(low)
    }

    private mutating func readBytes(_ count: Int) throws(ClientHelloStop) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(count)
        for _ in 0..<count {
            result.append(try readByte())
        }
        return result
    }

    private mutating func readByte() throws(ClientHelloStop) -> UInt8 {
        if fragmentRemaining == 0 {
            try openRecord()
        }
        guard position < bytes.count else { throw .needMoreData }
        let byte = bytes[position]
        position += 1
        fragmentRemaining -= 1
        offset += 1
        return byte
    }

    private mutating func skip(_ count: Int) throws(ClientHelloStop) {
        var remaining = count
        while remaining > 0 {
            if fragmentRemaining == 0 {
                try openRecord()
            }
            let step = min(remaining, fragmentRemaining, bytes.count - position)
            guard step > 0 else { throw .needMoreData }
            position += step
            fragmentRemaining -= step
            offset += step
            remaining -= step
        }
    }

    /// Checks the 5-byte header of the record starting at `position`, byte by byte so that a mismatch is found as
    /// soon as it arrives, and moves into its fragment.
    private mutating func openRecord() throws(ClientHelloStop) {
        var record: String { recordCount == 0 ? "the record" : "record \(recordCount + 1)" }
        let contentType = try headerByte(0)
        guard contentType == 0x16 else {
            throw .notTLS("\(record) has content type \(hex(contentType)), not handshake (0x16)")
        }
        let major = try headerByte(1)
        guard major == 0x03 else {
            throw .notTLS("\(record) has version major \(hex(major)), not 0x03")
        }
        let minor = try headerByte(2)
        guard minor == 0x01 || minor == 0x03 else {
            throw .notTLS("\(record) has version minor \(hex(minor)), not 0x01 or 0x03")
        }
        let length = Int(try headerByte(3)) << 8 | Int(try headerByte(4))
        guard length <= TLSDetection.maxVectorLength else {
            throw .notTLS("\(record) is \(length) bytes long, more than \(TLSDetection.maxVectorLength)")
        }
        guard length > 0 else {
            throw .notTLS("\(record) is empty, which handshake records never are")
        }
        position += 5
        fragmentRemaining = length
        recordCount += 1
    }

    private func headerByte(_ index: Int) throws(ClientHelloStop) -> UInt8 {
        guard index < bytes.count - position else { throw .needMoreData }
        return bytes[position + index]
    }

    private func byteCount(_ count: Int) -> String {
        count == 1 ? "1 byte" : "\(count) bytes"
    }

    private func hex(_ byte: UInt8) -> String {
        let digits = String(byte, radix: 16)
        return byte < 0x10 ? "0x0\(digits)" : "0x\(digits)"
    }
}
