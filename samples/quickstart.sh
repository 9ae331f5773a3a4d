#!/usr/bin/env bash
# Quick start: pack Qcow.Build.Sdk into a local feed (artifacts/feed) and build the seed sample through it, exactly
# as a user's project references it (Sdk="Qcow.Build.Sdk/0.1.0", resolved through samples/nuget.config).
# Needs only the .NET 10 SDK. Extra arguments go to `dotnet build` (e.g. -p:QcowClusterSize=4096, -question).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 MSBUILDDISABLENODEREUSE=1

dotnet pack "$root/sdk/Qcow.Build.Sdk/Qcow.Build.Sdk.csproj" -c Release -o "$root/artifacts/feed" -nodeReuse:false
# NuGet caches a package by version: drop the cached 0.1.0 so the package just packed is the one used.
rm -rf "$root/artifacts/packages/qcow.build.sdk"

dotnet build "$root/samples/seed/seed.imgproj" -nodeReuse:false "$@"
echo
echo "Linear chain of samples/seed/images/imageC.qcow2:"
ls -l "$root/samples/seed/bin/Debug/"
cat "$root/samples/seed/bin/Debug/chain.json"
