# Source on the lent GPU machine: install the carried wheels (.whl) and put the repo on the path.
python3 -m pip install -q --no-index --no-deps --no-compile --upgrade --target /tmp/site .whl/*.whl >/dev/null 2>&1 || echo "wheel install failed"
export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
export AUTOTUNER_CACHE_DIR=${AUTOTUNER_CACHE_DIR:-/tmp/autotuner-cache}
export PYTHONUNBUFFERED=1
autotuner() { python3 -m autotuner.cli.main "$@"; }
