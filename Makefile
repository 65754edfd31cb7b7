# The README's test command is `make test`; CI (.ci/run) runs the same target.
.PHONY: test install export-check docs readme

install:
	python -m pip install -e ".[dev]"

# Notebooks are the source: exporting them must not change radiomicnet/.
export-check:
	nbdev-export
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
	  test -z "$$(git status --porcelain -- radiomicnet)" || { git status --short -- radiomicnet; echo "radiomicnet/ differs from what nbs/ export: run nbdev-export and commit"; exit 1; }; fi

# nbdev-test runs two notebooks at once on our 2-core machines: one torch thread each avoids oversubscription.
test: install export-check
	OMP_NUM_THREADS=1 nbdev-test
	python -m pytest -q

readme:
	radiomicnet-docs --readme-only

docs:
	radiomicnet-docs --out _site
