import Foundation
import LinkerdProxyAPI
import LinkerdTestSupport
import SwiftProtobuf
import Testing
import X509

/// A client that is not ours: Python grpcio, with stubs generated from our .proto by grpcio-tools.
@Suite("A Python grpcio client calls Certify")
struct PythonClientTests {
    static let script = """
        import sys, grpc
        sys.path.insert(0, sys.argv[1])
        import identity_pb2, identity_pb2_grpc
        port, anchor, name, token, csr_path = sys.argv[2:7]
        creds = grpc.ssl_channel_credentials(root_certificates=open(anchor, 'rb').read())
        channel = grpc.secure_channel('127.0.0.1:' + port, creds,
            options=[('grpc.ssl_target_name_override', 'linkerd-identity.linkerd.serviceaccount.identity.linkerd.cluster.local')])
        stub = identity_pb2_grpc.IdentityStub(channel)
        csr = open(csr_path, 'rb').read()
        reply = stub.Certify(identity_pb2.CertifyRequest(identity=name, token=token.encode(), certificate_signing_request=csr))
        print('LEAF', reply.leaf_certificate.hex())
        print('INTERMEDIATES', len(reply.intermediate_certificates))
        print('VALID_UNTIL', reply.valid_until.seconds)
        try:
            stub.Certify(identity_pb2.CertifyRequest(identity='', token=b'x', certificate_signing_request=csr))
            print('REJECTION none')
        except grpc.RpcError as e:
            print('REJECTION', e.code().name, e.details())
        """

    @Test("Same answers as the Swift client: a leaf for a valid request, INVALID_ARGUMENT for a missing identity")
    func pythonClient() async throws {
        let check = try runProcess("/usr/bin/env", ["python3", "-c", "import grpc, grpc_tools"])
        guard check.status == 0 else {
            Issue.record("grpcio and grpcio-tools are missing: run `make deps` (\(check.output))")
            return
        }
        let root = try MintedCA.root()
        let files = try IdentityFiles(anchor: root)
        try files.writeIssuer(try root.sign())
        let generated = files.root.appendingPathComponent("python").path
        try FileManager.default.createDirectory(atPath: generated, withIntermediateDirectories: true)
        let protoDirectory = packageRoot.appendingPathComponent("Sources/LinkerdProxyAPI/Proto").path
        let protoc = try runProcess(
            "/usr/bin/env",
            [
                "python3", "-m", "grpc_tools.protoc", "-I", protoDirectory, "--python_out=\(generated)",
                "--grpc_python_out=\(generated)", protoDirectory + "/identity.proto",
            ])
        try #require(protoc.status == 0, "\(protoc.output)")
        let scriptPath = files.root.appendingPathComponent("certify.py").path
        try Self.script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        let name = identity("web", "emojivoto")
        let csrPath = files.root.appendingPathComponent("csr.der").path
        try Data(try makeCSR(commonName: name, names: [.dnsName(name)])).write(to: URL(fileURLWithPath: csrPath))

        try await withIdentityService(files: files) { fixture in
            fixture.registerToken("web-token", serviceAccount: "web", namespace: "emojivoto")
            let result = try runProcess(
                "/usr/bin/env",
                ["python3", scriptPath, generated, "\(fixture.port)", files.anchorsPath, name, "web-token", csrPath])
            try #require(result.status == 0, "\(result.output)")
            let lines = Dictionary(
                result.output.split(separator: "\n").compactMap { line -> (String, String)? in
                    let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
                    return parts.count == 2 ? (parts[0], parts[1]) : nil
                }, uniquingKeysWith: { $1 })
            #expect(lines["INTERMEDIATES"] == "1")
            #expect(lines["REJECTION"] == "INVALID_ARGUMENT missing identity", "\(result.output)")
            let leafHex = try #require(lines["LEAF"])
            #expect(leafHex.count > 200)
            // The same request from the Swift client gets a leaf for the same name and the same kind of expiry.
            let swift = try await fixture.certify(
                certifyRequest(
                    identity: name, token: "web-token", csr: try makeCSR(commonName: name, names: [.dnsName(name)])))
            let pythonValidUntil = try #require(lines["VALID_UNTIL"].flatMap { Int64($0) })
            #expect(abs(pythonValidUntil - swift.validUntil.seconds) < 30)
        }
    }
}
