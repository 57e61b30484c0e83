import Foundation
import GRPCCore
import LinkerdProxyAPI
import SwiftProtobuf
import Testing

/// The generated messages against hand-assembled protobuf bytes: field numbers and wire types are what Linkerd's
/// proxy API puts on the wire (proxy-api-wire.md), so upstream proxies and controllers interoperate.
@Suite("Proxy API wire format")
struct WireFormatTests {
    @Test func certifyRequestFieldsAreNumberedAsUpstream() throws {
        var request = Io_Linkerd_Proxy_Identity_CertifyRequest()
        request.identity = "a"
        request.token = Data("b".utf8)
        request.certificateSigningRequest = Data([0x30])
        // Field 1 (string), 2 (bytes), 3 (bytes): all length-delimited (wire type 2).
        let expected: [UInt8] = [0x0A, 0x01, 0x61, 0x12, 0x01, 0x62, 0x1A, 0x01, 0x30]
        #expect(try request.serializedBytes() as [UInt8] == expected)
        #expect(try Io_Linkerd_Proxy_Identity_CertifyRequest(serializedBytes: expected) == request)
    }

    @Test func certifyResponseCarriesTheChainAndValidUntil() throws {
        var response = Io_Linkerd_Proxy_Identity_CertifyResponse()
        response.leafCertificate = Data([0x01])
        response.intermediateCertificates = [Data([0x02]), Data([0x03])]
        response.validUntil = Google_Protobuf_Timestamp(seconds: 1, nanos: 0)
        // 1: bytes; 2: repeated bytes (one record each); 3: Timestamp {1: seconds varint}.
        let expected: [UInt8] = [0x0A, 0x01, 0x01, 0x12, 0x01, 0x02, 0x12, 0x01, 0x03, 0x1A, 0x02, 0x08, 0x01]
        #expect(try response.serializedBytes() as [UInt8] == expected)
    }

    @Test func tcpAddressUsesFixed32ForIPv4() throws {
        var address = Io_Linkerd_Proxy_Net_TcpAddress()
        address.ip.ipv4 = 0x0A00_0001  // 10.0.0.1
        address.port = 8080
        // ip (1, message) { ipv4 (1, fixed32 = wire type 5), little-endian }, port (2, varint 8080).
        let expected: [UInt8] = [0x0A, 0x05, 0x0D, 0x01, 0x00, 0x00, 0x0A, 0x10, 0x90, 0x3F]
        #expect(try address.serializedBytes() as [UInt8] == expected)
    }

    @Test func weightedAddrKeepsItsSparseFieldNumbers() throws {
        var endpoint = Io_Linkerd_Proxy_Destination_WeightedAddr()
        endpoint.weight = 10_000
        endpoint.tlsIdentity.dnsLikeIdentity.name = "x"
        // weight is field 3 (varint), tls_identity field 5 { dns_like_identity 1 { name 1 } }.
        let expected: [UInt8] = [0x18, 0x90, 0x4E, 0x2A, 0x05, 0x0A, 0x03, 0x0A, 0x01, 0x78]
        #expect(try endpoint.serializedBytes() as [UInt8] == expected)
    }

    @Test func methodPathsAreUpstreams() {
        #expect(
            Io_Linkerd_Proxy_Identity_Identity.Method.Certify.descriptor.fullyQualifiedMethod
                == "io.linkerd.proxy.identity.Identity/Certify")
        #expect(
            Io_Linkerd_Proxy_Destination_Destination.Method.Get.descriptor.fullyQualifiedMethod
                == "io.linkerd.proxy.destination.Destination/Get")
        #expect(
            Io_Linkerd_Proxy_Destination_Destination.Method.GetProfile.descriptor.fullyQualifiedMethod
                == "io.linkerd.proxy.destination.Destination/GetProfile")
        #expect(
            Io_Linkerd_Proxy_Tap_Tap.Method.Observe.descriptor.fullyQualifiedMethod
                == "io.linkerd.proxy.tap.Tap/Observe")
    }

    @Test func garbageIsRejectedWithAnError() {
        #expect(throws: (any Error).self) {
            try Io_Linkerd_Proxy_Identity_CertifyRequest(serializedBytes: [0x0A, 0xFF, 0xFF, 0xFF])
        }
    }
}
