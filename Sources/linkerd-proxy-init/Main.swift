import Foundation
import LinkerdProxyInitCLI

/// The `linkerd-proxy-init` executable: ``ProxyInitCommand`` on the process's arguments, environment and streams.
@main
struct ProxyInitMain {
    static func main() {
        ProxyInitCommand.main(Array(CommandLine.arguments.dropFirst()))
    }
}
