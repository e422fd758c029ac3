#!/bin/bash
# As SeBS's init.sh scripts do: copy static files into the package directory ($1).
DIR=$1
VERBOSE=$2
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" >/dev/null 2>&1 && pwd)"
if [ "$VERBOSE" = true ]; then
  echo "Update ${DIR} with static templates"
fi
cp -r "${SCRIPT_DIR}/templates" "${DIR}"
