#!/bin/bash
# faaslab's re-creation of SeBS's init.sh (not SeBS's file): copy the templates
# into the package (SeBS runs it as `init.sh <package dir> <verbose> <arch>`).
DIR=$1
VERBOSE=$2
SCRIPT_DIR="$( cd "$( dirname "${BASH_SOURCE[0]}" )" >/dev/null 2>&1 && pwd )"
if [ "$VERBOSE" = true ]; then
  echo "Update ${DIR} with static templates ${SCRIPT_DIR}/templates"
fi
cp -r "${SCRIPT_DIR}/templates" "${DIR}"
