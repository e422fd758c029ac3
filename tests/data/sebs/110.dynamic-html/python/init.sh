#!/bin/bash
# SeBS's package step: copy the static templates into the package directory ($1).
PACKAGE_DIR=$1
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cp -r "${HERE}/templates" "${PACKAGE_DIR}"
