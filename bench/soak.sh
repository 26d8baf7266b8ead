#!/bin/sh
# The fault soak of issue 12 (tests/tests/soak.rs): RSA through the provider and ZIP
# through hisi-zip on the device model with injected failures, stalls and lost doorbells,
# every result compared with software. Without arguments: the short form CI runs (under a
# minute). --long: the long form (10^6 RSA operations, 10 GB of ZIP; 15-30 minutes on two
# cores). WD_SOAK_RSA_OPS / WD_SOAK_ZIP_MB (per main worker) override the plan.
set -e
cd "$(dirname "$0")/.."
if [ "$1" = --long ]; then
    export WD_SOAK=long
fi
exec nice -n 10 cargo test --release -p wd-tests --test soak -- --nocapture
