#!/usr/bin/env bash
# The whole test suite: unit, property, conformance and interop tests of every crate.
# Interop tests need Debian's prometheus (promtool) and prometheus-node-exporter; without them they print a
# notice and skip, unless IGNIS_REQUIRE_INTEROP=1 (as in CI), where a missing peer fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d ../shared/conformance/promql ]; then
  echo "error: ../shared/conformance/promql not found (the PromQL conformance scripts live beside the repo)" >&2
  exit 1
fi
missing=()
for bin in prometheus promtool prometheus-node-exporter victoria-metrics; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "note: interop tests will be skipped; missing: ${missing[*]}"
  echo "      install with: sudo apt-get install -y prometheus prometheus-node-exporter victoria-metrics"
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "note: cargo-nextest not found, using cargo test" >&2
  exec cargo test --release --workspace --no-fail-fast
fi
exec cargo nextest run --release --workspace --no-fail-fast --failure-output final
