#!/usr/bin/env bash
# Makes (or reuses) one Python virtual environment per example with a requirements.txt, at
# $ELT_PY_DIR/<example> (default /var/tmp/elt-py, outside the clone so it survives), for
# the example tests in tests/e2e/examples.rs. An environment is rebuilt when its
# requirements.txt changes.
#
# Best effort: when an example's packages cannot be installed, it gets no environment and
# its test only checks syntax (and says so), unless ELT_REQUIRE_PYTHON_EXAMPLES=1 (.ci/run
# sets it), which makes this script and those tests fail instead.
set -euo pipefail
cd "$(dirname "$0")/.."

root=${ELT_PY_DIR:-/var/tmp/elt-py}
python=${PYTHON:-python3}
required=${ELT_REQUIRE_PYTHON_EXAMPLES:-0}
mkdir -p "$root"

for requirements in examples/*/requirements.txt; do
  name=$(basename "$(dirname "$requirements")")
  env=$root/$name
  stamp=$env/.requirements.sha256
  want=$(sha256sum "$requirements" | cut -d' ' -f1)
  if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
    continue
  fi
  echo "python-envs: installing examples/$name's packages into $env"
  rm -rf "$env"
  if "$python" -m venv "$env" \
    && "$env/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" \
      >"$root/$name.log" 2>&1; then
    echo "$want" >"$stamp"
  else
    echo "python-envs: cannot install examples/$name's packages (see $root/$name.log);" \
      "its test will only check syntax" >&2
    rm -rf "$env"
    if [[ $required == 1 ]]; then
      exit 1
    fi
  fi
done
