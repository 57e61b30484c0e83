/// One iptables invocation, without the binary: e.g. `["-t", "nat", "-N", "PROXY_INIT_REDIRECT"]`.
///
/// The same command runs with `iptables` or `ip6tables`; the caller picks the binary for the family.
public struct IPTablesCommand: Sendable, Hashable, CustomStringConvertible {
    /// The arguments, each passed to the binary as one argument, unquoted.
    public var arguments: [String]

    /// The command with these arguments.
    public init(_ arguments: [String]) {
        self.arguments = arguments
    }

    /// The arguments shell-quoted (single quotes only where a token has characters outside
    /// `[A-Za-z0-9_./:,=@%+-]`), joined by spaces.
    ///
    /// A POSIX shell splits the text back into exactly ``arguments``, so a logged command can be pasted into a shell;
    /// the commands proxy-init plans need no quotes at all, and read as an operator would type them.
    public var description: String {
        arguments.map(Self.shellQuoted).joined(separator: " ")
    }

    /// `token` as a shell word: unchanged when every character is safe unquoted, otherwise in single quotes, with
    /// each single quote written as `'\''` (close the quotes, an escaped quote, reopen them).
    static func shellQuoted(_ token: String) -> String {
        if !token.isEmpty, token.unicodeScalars.allSatisfy(isShellSafe) {
            return token
        }
        return "'" + token.replacing("'", with: #"'\''"#) + "'"
    }

    /// Whether `scalar` means itself to a shell wherever it appears in a word.
    private static func isShellSafe(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar {
        case "A"..."Z", "a"..."z", "0"..."9", "_", ".", "/", ":", ",", "=", "@", "%", "+", "-": true
        default: false
        }
    }
}
