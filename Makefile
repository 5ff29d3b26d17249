# One entry point for a fresh machine: `make demo` runs livecomp on its shipped
# defaults, `make test` runs the whole suite. Both build .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= out

.PHONY: demo test bench models clean

# constraints.txt pins torch to the CPU build that the training extra would
# otherwise resolve to a multi-GB CUDA build; pyproject keeps the honest range.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[train,test]'
	touch $(STAMP)

# The co-performer's offline twin on the shipped example phrase: two 4-bar calls, each answered.
demo: $(STAMP)
	$(BIN)/livecomp duet --out $(OUT)/demo.mid --png $(OUT)/demo.png \
	  $$(command -v fluidsynth >/dev/null && echo --wav $(OUT)/demo.wav)

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/convert.py
	$(BIN)/python bench/table.py
	$(BIN)/python bench/latency.py

# The shipped models: trained on the Nottingham MIDI files at 16th notes with off/held/struck
# key states, exported to exported/<name>, their checkpoints kept in bench/checkpoints/shipped-<name>.
# Epoch-limited with a fixed seed, so a rerun rebuilds the same weights (on the same torch build).
MODEL_RUNS ?= runs/models
SHIP_DATA  := --data ../shared/midi/nottingham --steps-per-beat 4 --key-states 3 --window 64 \
              --transpose 3 --target-weight step --seed 0 --quiet
SHIP_basic    := --model basic --hidden 128 --layers 2 --dropout 0.3 --neighbour-keys 12 --hop-bars 2 --epochs 20
SHIP_endecell := --model endecell --chunk 8 --hidden 256 --layers 1 --enc-hidden 64 --dec-hidden 96 \
                 --encoder-skip --hop-bars 4 --epochs 16

models: $(STAMP)
	for name in basic endecell; do \
	  rm -rf $(MODEL_RUNS)/$$name && \
	  OMP_NUM_THREADS=1 $(BIN)/livecomp train $(SHIP_DATA) $$( [ $$name = basic ] && echo "$(SHIP_basic)" || echo "$(SHIP_endecell)" ) --out $(MODEL_RUNS)/$$name && \
	  $(BIN)/livecomp export $(MODEL_RUNS)/$$name --out exported/$$name && \
	  mkdir -p bench/checkpoints/shipped-$$name && \
	  cp $(MODEL_RUNS)/$$name/best.pt $(MODEL_RUNS)/$$name/best.json $(MODEL_RUNS)/$$name/best.png \
	     $(MODEL_RUNS)/$$name/config.json $(MODEL_RUNS)/$$name/log.jsonl bench/checkpoints/shipped-$$name/ || exit 1; \
	done

clean:
	rm -rf $(VENV) $(OUT)
