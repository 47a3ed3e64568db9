# Two commands a fresh machine needs: `make demo` and `make test`. Both build .venv and install from scratch.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# torch/torchvision pins that install offline here (override e.g. TORCH_SPEC="torch torchvision" elsewhere)
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
DEMO_OUT ?= demo_out

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install $(TORCH_SPEC)
	$(PY) -m pip install -e ".[all,test]"
	# Quantus (LGPL, test-only cross-check): its declared deps pull a second OpenCV build, so install it alone
	$(PY) -m pip install --no-deps "quantus==0.6.0"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/cameras explain --out $(DEMO_OUT)
	$(VENV)/bin/cameras compare --classes "tiger cat,Egyptian cat" --out $(DEMO_OUT)
	@echo "Pictures written to $(DEMO_OUT)/"

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

# pytest exits 5 when it collects no test: that must fail, never pass silently.
test: $(STAMP)
	$(MAKE) lint
	$(PY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; \
	[ $$rc -eq 0 ] || exit $$rc
	# The CUDA tests skip without a GPU; run them again on the CPU (the same code paths, device "cpu") so CI runs them.
	CAMERAS_TEST_DEVICE=cpu $(PY) -m pytest -q tests/gpu; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no GPU tests: failing" >&2; exit 1; fi; exit $$rc

bench: $(STAMP)
	$(PY) benchmarks/bench_cpu.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .mypy_cache .ruff_cache
