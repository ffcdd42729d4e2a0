#!/usr/bin/env bash
# Regenerates the Go code for every .proto under proto/ (make proto).
# Needs protoc (Debian: protobuf-compiler) and the three plugins at the pinned
# versions below; the Makefile installs them into bin/tools.
set -euo pipefail
cd "$(dirname "$0")"
tools=${TOOLS:-../bin/tools}
export PATH="$tools:$PATH"
inc=/usr/include
files=$(find . -name '*.proto' | sed 's|^\./||' | sort)
find . -name '*.pb.go' -delete
protoc -I . -I "$inc" \
  --go_out=. --go_opt=paths=source_relative \
  --go-vtproto_out=. --go-vtproto_opt=paths=source_relative,features=marshal+unmarshal+unmarshal_unsafe+size+clone+equal \
  $files
# The gRPC stubs only for the service definitions (koinos.services and
# Ember's extension): the other files hold messages only.
grpc_files=$(printf '%s\n' $files | grep '/services/')
protoc -I . -I "$inc" \
  --go-grpc_out=. --go-grpc_opt=paths=source_relative \
  $grpc_files
