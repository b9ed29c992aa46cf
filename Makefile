# gadms: two set-up-free entry points, `make demo` and `make test`. Both create the
# project-local libtorch (PyPI torch in .venv) on first use; a stamp makes that happen once.

SHELL := /bin/bash
PYTHON ?= python3
TORCH_VERSION := 2.11.0
VENV := .venv
STAMP := $(VENV)/.torch-$(TORCH_VERSION)
# The tests read the runs' TensorBoard event files back with TensorBoard's own reader.
TENSORBOARD_VERSION := 2.21.0
TENSORBOARD_STAMP := $(VENV)/.tensorboard-$(TENSORBOARD_VERSION)
# tch finds libtorch through this link to the venv's torch package: .cargo/config.toml names
# it as LIBTORCH, so plain cargo commands build against it and run tests with it.
LIBTORCH := $(VENV)/torch
CARGO ?= cargo

.PHONY: build test lint demo ablation bench clean-venv

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check torch==$(TORCH_VERSION) numpy safetensors
	touch $@

$(TENSORBOARD_STAMP): | $(STAMP)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check tensorboard==$(TENSORBOARD_VERSION)
	touch $@

# A relative link, so that it holds wherever the checkout is. Order-only: the link is made
# once, not each time the stamp is newer than the package.
$(LIBTORCH): | $(STAMP)
	ln -sfn "$$($(VENV)/bin/python -c 'import os, sys, torch; print(os.path.relpath(os.path.dirname(torch.__file__), sys.prefix))')" $@

# Training across processes on CPUs (`gadms-run run --nproc-per-node N`) runs on Gloo, which
# the build links when libgloo-dev's headers are there. It builds without them (that training
# then says to install it), so this installs the package when it is missing and apt-get can,
# as root or through sudo without a password (`sudo -n` never prompts), and only warns when it
# cannot.
GLOO_HEADERS := /usr/include/gloo/config.h
$(GLOO_HEADERS):
	@SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo -n); \
	if command -v apt-get >/dev/null; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $$SUDO apt-get install -y libgloo-dev || { $$SUDO apt-get update && $$SUDO apt-get install -y libgloo-dev; }; \
	fi || true; \
	[ -e $@ ] || echo "warning: libgloo-dev is not installed; multi-process CPU training will be unavailable"

# The report tests compile the LaTeX tables with Debian's TeX (pdflatex, booktabs, amssymb)
# and read the charts' PDFs with poppler's pdftotext; installed like Gloo above where apt-get
# can, else those tests check the files' structure alone.
PDFLATEX := /usr/bin/pdflatex
$(PDFLATEX):
	@SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo -n); \
	if command -v apt-get >/dev/null; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  PACKAGES="texlive-latex-base texlive-latex-recommended poppler-utils"; \
	  $$SUDO apt-get install -y --no-install-recommends $$PACKAGES || { $$SUDO apt-get update && $$SUDO apt-get install -y --no-install-recommends $$PACKAGES; }; \
	fi || true; \
	[ -e $@ ] || echo "warning: pdflatex is not installed; the report tests will not compile the LaTeX tables"; \
	command -v pdftotext >/dev/null || echo "warning: pdftotext is not installed; the report tests will not read the charts' text"

# One profile for everything: the binary, every plugin and the tests (release; libtorch
# code is unusably slow in debug and a second profile would build tch twice).
build: $(LIBTORCH) $(GLOO_HEADERS)
	$(CARGO) build --release --workspace --all-targets

# Benchmarks are built (so they stay compilable) but not run: they measure, they do not test.
# tests/slurm.rs starts a one-node SLURM (tests/slurm/setup.sh installs slurm-wlm with apt
# where it is missing and it can) and stops it after; it skips, saying why, where it cannot.
test: build $(TENSORBOARD_STAMP) $(PDFLATEX)
	$(CARGO) test --release --workspace --lib --bins --tests

lint: $(LIBTORCH) $(GLOO_HEADERS)
	$(CARGO) fmt --all --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings

# The demo and the ablation fine-tune the tiny CLIP that pretrain-clip.toml trains (skipped
# once finished). Their reports are also copied, as markdown, CSV and PNG, into the example
# reports the repository keeps, so that git shows what a new run changed in them.
# $(call copy_report,REPORT,EXAMPLE)
define copy_report
	rm -rf $(2) && mkdir -p $(2)/charts
	cp $(1)/*.md $(1)/*.csv $(2)/
	cp $(1)/charts/*.png $(2)/charts/
endef

demo: build
	./target/release/gadms-run run experiments/quickstart/pretrain-clip.toml
	./target/release/gadms-run run experiments/quickstart/demo.toml
	$(call copy_report,reports/quickstart-demo,docs/example-report)

# The paper's Table 4 at CPU scale: every masking variant, 2 seeds, 8 epochs (about 3 hours on
# 2 cores).
ablation: build
	./target/release/gadms-run run experiments/quickstart/pretrain-clip.toml
	./target/release/gadms-run run experiments/quickstart/ablation-masking.toml
	$(call copy_report,reports/quickstart-ablation-masking,docs/example-ablation)

bench: build
	$(CARGO) bench --workspace

clean-venv:
	rm -rf $(VENV)
