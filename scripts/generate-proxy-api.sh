#!/usr/bin/env bash
# Regenerates Sources/LinkerdProxyAPI/Generated from the .proto files next to it. Needs protoc (Debian's
# protobuf-compiler, installed here if missing) and builds the two protoc plugins in release from the resolved
# swift-protobuf and grpc-swift-protobuf checkouts (about 50 s each, once). CI never runs this: the generated code
# is committed.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v protoc >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler
fi
swift package resolve
generators=.build/generators
swift build -c release --package-path .build/checkouts/swift-protobuf --product protoc-gen-swift \
    --scratch-path "$generators/swift-protobuf"
swift build -c release --package-path .build/checkouts/grpc-swift-protobuf --product protoc-gen-grpc-swift-2 \
    --scratch-path "$generators/grpc-swift-protobuf"

proto=Sources/LinkerdProxyAPI/Proto
out=Sources/LinkerdProxyAPI/Generated
rm -rf "$out"
mkdir -p "$out"
# Messages for every file; services only where there are some (the others would get empty files).
protoc -I "$proto" -I /usr/include \
    --plugin=protoc-gen-swift="$generators/swift-protobuf/release/protoc-gen-swift" \
    --swift_out="$out" --swift_opt=Visibility=Public,FileNaming=DropPath \
    "$proto"/*.proto
protoc -I "$proto" -I /usr/include \
    --plugin=protoc-gen-grpc-swift-2="$generators/grpc-swift-protobuf/release/protoc-gen-grpc-swift-2" \
    --grpc-swift-2_out="$out" --grpc-swift-2_opt=Visibility=Public,Server=true,Client=true,FileNaming=DropPath \
    $(grep -l '^service ' "$proto"/*.proto)
echo "generated: $(ls "$out" | tr '\n' ' ')"
