import ArgumentParser
import LinkerdCLI

/// The `linkerd` executable: the command line of ``LinkerdCommand``, on the process's arguments and streams.
@main
struct LinkerdMain {
    static func main() async {
        await LinkerdCommand.main()
    }
}
