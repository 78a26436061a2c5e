#!/usr/bin/env bash
# Set up davinci-zoo in the current Python environment (activate a virtualenv first if you
# want one): a headless Java runtime where missing (pycocoevalcap's PTB tokenizer and METEOR
# need it), then the zoo, its first-party plugins and the development tools, with the exact
# versions of requirements/constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v java >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        SUDO=""
        [ "$(id -u)" -eq 0 ] || SUDO="sudo"
        echo "setup: installing a headless Java runtime (for pycocoevalcap)"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq default-jre-headless >/dev/null
    else
        echo "setup: WARNING: no java and no apt-get; install a Java runtime for METEOR/PTB" >&2
    fi
fi

python -m pip install --disable-pip-version-check -q \
    -c requirements/constraints.txt \
    -e ".[dev]" \
    -e plugins/vqgan \
    -e plugins/dvae \
    -e plugins/clip \
    -e plugins/scenes
echo "setup: done ($(python -c 'import davinci_zoo; print("davinci-zoo", davinci_zoo.__version__)'))"
