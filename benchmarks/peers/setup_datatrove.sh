#!/usr/bin/env bash
# Creates .venv-datatrove (git-ignored) with DataTrove and what its MinHash and Gopher steps need, for the
# side-by-side run of benchmarks/end_to_end.py. DataTrove is kept out of .venv: it pins its own versions.
# MinHash needs the [processing] and [io] extras; the Gopher quality filter's word tokeniser needs spaCy.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
VENV=.venv-datatrove
DATATROVE_VERSION="${DATATROVE_VERSION:-0.10.1}"
if [ -f "$VENV/.installed" ]; then
  echo "$VENV: already installed"
  exit 0
fi
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q "datatrove[processing,io]==${DATATROVE_VERSION}" spacy
"$VENV/bin/python" -c "import datatrove, spacy; from datatrove.pipeline.dedup import MinhashDedupSignature; from datatrove.pipeline.filters import GopherQualityFilter; print('datatrove', datatrove.__version__ if hasattr(datatrove, '__version__') else '', 'spacy', spacy.__version__)"
touch "$VENV/.installed"
