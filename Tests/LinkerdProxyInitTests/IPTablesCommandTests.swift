import Foundation
import LinkerdProxyInit
import Testing

@Suite("IPTablesCommand")
struct IPTablesCommandTests {
    @Test("plain tokens are printed as they are")
    func plainTokens() {
        let command = IPTablesCommand([
            "-t", "nat", "-A", "PROXY_INIT_REDIRECT", "-p", "tcp", "--match", "multiport", "--dports", "1000:2000,80",
            "-s", "fd00::/8", "-m", "comment", "--comment", "proxy-init/ignore-port-1000:2000,80", "user@host",
            "a=b%c+d",
        ])
        #expect(command.description == command.arguments.joined(separator: " "))
    }

    @Test(
        "tokens with other characters are single-quoted",
        arguments: [
            ("with space", "'with space'"),
            ("", "''"),
            (#"say "hi""#, #"'say "hi"'"#),
            ("it's", #"'it'\''s'"#),
            ("$HOME", "'$HOME'"),
            ("a*b", "'a*b'"),
            ("tab\there", "'tab\there'"),
            ("back\\slash", "'back\\slash'"),
            ("ümlaut", "'ümlaut'"),
            ("~user", "'~user'"),
        ]
    )
    func quoting(token: String, quoted: String) {
        #expect(IPTablesCommand(["-m", "comment", "--comment", token]).description == "-m comment --comment \(quoted)")
    }

    @Test("a POSIX shell splits the description back into the arguments")
    func shellRoundTrip() throws {
        let arguments = [
            "-t", "nat", "-D", "OUTPUT", "-m", "comment", "--comment", #"old proxy-init "v1""#, "it's", "",
            "a  b", "$(echo no)", "`echo no`", "line\nbreak", "semi;colon", "glob*?[x]", "#hash", "~", "back\\slash",
            "'", "''", "-j", "PROXY_INIT_OUTPUT",
        ]
        let command = IPTablesCommand(arguments)
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", #"printf '%s\0' "# + command.description]
        let output = Pipe()
        shell.standardOutput = output
        try shell.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        shell.waitUntilExit()
        #expect(shell.terminationStatus == 0)
        let words = String(decoding: data, as: UTF8.self).split(separator: "\0", omittingEmptySubsequences: false)
        #expect(words.dropLast().map(String.init) == arguments)
    }
}
