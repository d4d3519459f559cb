#!/usr/bin/env bash
# Build the documentation site (docs/, mkdocs.yml) into ./site with `mkdocs build --strict`:
# a warning (a link to a page or anchor that does not exist, a page missing from the nav) fails
# the build. Installs the `docs` extra (mkdocs, mkdocs-material) into .venv when it is missing.
# Extra arguments go to mkdocs build; `mkdocs serve` previews the site on 127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
if ! python -c "import mkdocs, material" 2>/dev/null; then
  PYTHONWARNINGS="ignore:Editable installation" python -m pip install -q -e ".[docs]"
fi
NO_MKDOCS_2_WARNING=1 python -m mkdocs build --strict --site-dir site "$@"
