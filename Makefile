# The README's test command is `make test`; CI (.ci/run) runs the same target.
.PHONY: test install export-check docs readme

install:
	python -m pip install -e ".[dev]"

# Notebooks are the source: exporting them must not change radiomicnet/.
export-check:
	nbdev-export
	@if git rev-parse --git-dir >/dev/null 2>&1; then \
	  test -z "$$(git status --porcelain -- radiomicnet)" || { git status --short -- radiomicnet; echo "radiomicnet/ differs from what nbs/ export: run nbdev-export and commit"; exit 1; }; fi

test: install export-check
	nbdev-test
	python -m pytest -q

readme:
	radiomicnet-docs --readme-only

docs:
	radiomicnet-docs --out _site
