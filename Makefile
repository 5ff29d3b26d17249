# One entry point for a fresh machine: `make demo` runs livecomp on its shipped
# defaults (building .venv-demo, the runtime alone), `make test` runs the whole suite
# (building .venv with the training and test extras).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= out

.PHONY: demo test bench models clean more-piano-large

# constraints.txt pins torch to the CPU build that the training extra would
# otherwise resolve to a multi-GB CUDA build; pyproject keeps the honest range.
$(STAMP): pyproject.toml setup.py livecomp/_jackmidi.c constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip 'setuptools>=77'
	$(BIN)/pip install --quiet -c constraints.txt -e '.[train,test]'
	touch $(STAMP)

# The demo needs the runtime alone (numpy, mido, python-rtmidi, typer, onnxruntime): a venv of its
# own without torch, onnx or the test tools, so a first run downloads no training stack.
DEMO_VENV  ?= .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed
$(DEMO_STAMP): pyproject.toml setup.py livecomp/_jackmidi.c
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/pip install --quiet --upgrade pip
	$(DEMO_VENV)/bin/pip install --quiet -e .
	touch $(DEMO_STAMP)

# The co-performer's offline twin on the shipped example: two 4-bar calls from Schumann's "Melodie"
# (Album for the Young, Op. 68 No. 1), each answered by the default model.
demo: $(DEMO_STAMP)
	$(DEMO_VENV)/bin/livecomp duet --out $(OUT)/demo.mid --png $(OUT)/demo.png \
	  $$(command -v fluidsynth >/dev/null && echo --wav $(OUT)/demo.wav)

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/convert.py
	$(BIN)/python bench/table.py
	$(BIN)/python bench/latency.py

# The shipped models, exported to exported/<name>, their checkpoints kept in bench/checkpoints/shipped-<name>.
# All at 16th notes with off/held/struck key states. piano (the default) learns from piano-midi.de and
# the Mutopia piano scores, pop from POP909, both in all 12 keys (--transpose 6), in two phases: an
# EnDeCell without a lookback (7 and 8 epochs), then the same weights with a one-bar lookback added
# (--init-from) for 85 minutes of training on one thread (a time budget: a rerun lands near, not
# exactly on, the same weights). folk (EnDeCell) and basic (the basic RNN) learn from the Nottingham
# folk tunes, epoch-limited with a fixed seed, so a rerun rebuilds the same weights (same torch build).
MODEL_RUNS ?= runs/models
MIDI       ?= ../shared/midi
GRID       := --steps-per-beat 4 --key-states 3 --target-weight step --seed 0 --quiet
ENDECELL   := --model endecell --chunk 8 --hidden 256 --layers 1 --enc-hidden 64 --dec-hidden 96 --encoder-skip --dropout 0.3
ALL_KEYS   := --window 128 --hop-bars 8 --transpose 6
LOOKBACK   := --lookback 16 --target-skip 16 --epochs 200 --time-budget 85m
PIANO      := --data $(MIDI)/piano-midi-de,$(MIDI)/mutopia
SHIP_piano-plain := $(ENDECELL) $(ALL_KEYS) $(PIANO) --epochs 7
SHIP_piano := $(ENDECELL) $(ALL_KEYS) $(PIANO) $(LOOKBACK) --init-from $(MODEL_RUNS)/piano-plain
SHIP_pop-plain := $(ENDECELL) $(ALL_KEYS) --data $(MIDI)/pop909 --epochs 8
SHIP_pop   := $(ENDECELL) $(ALL_KEYS) --data $(MIDI)/pop909 $(LOOKBACK) --init-from $(MODEL_RUNS)/pop-plain
SHIP_folk  := $(ENDECELL) --data $(MIDI)/nottingham --window 64 --transpose 3 --hop-bars 4 --epochs 16
SHIP_basic := --model basic --hidden 128 --layers 2 --dropout 0.3 --neighbour-keys 12 --data $(MIDI)/nottingham \
              --window 64 --transpose 3 --hop-bars 2 --epochs 20
SHIPPED    ?= piano pop folk basic
# A piano model three times the default's size (1.6 M parameters: time LSTM 512, encoder 96, decoder 160),
# trained on one thread a few hours at a time: `make run-piano-large` starts it; `make more-piano-large`
# goes on from the weights kept in bench/checkpoints/piano-large (8 hours of cosine schedule each time).
LARGE      := --model endecell --chunk 8 --hidden 512 --layers 1 --enc-hidden 96 --dec-hidden 160 --encoder-skip \
              --dropout 0.3 $(ALL_KEYS) $(PIANO) --lookback 16 --target-skip 16 --epochs 200 --time-budget 8h
SHIP_piano-large := $(LARGE)
more-piano-large: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/livecomp train $(GRID) $(LARGE) --init-from bench/checkpoints/piano-large \
	  --out $(MODEL_RUNS)/piano-large-more
LICENCE_piano := piano-midi.de: CC BY-SA 3.0 DE (Bernd Krueger); Mutopia Project: public domain, CC BY or CC BY-SA per piece
LICENCE_pop   := POP909: MIT (Wang et al. 2020); arrangements of copyrighted songs
LICENCE_folk  := Nottingham Music Database (Jukedeck cleaning): GPL-3.0

# one run: make run-NAME trains runs/models/NAME with SHIP_NAME
run-%: $(STAMP)
	rm -rf $(MODEL_RUNS)/$*
	OMP_NUM_THREADS=1 $(BIN)/livecomp train $(GRID) $(SHIP_$*) --out $(MODEL_RUNS)/$*

run-piano: run-piano-plain
run-pop: run-pop-plain

models: $(addprefix run-,$(SHIPPED))
	for name in $(SHIPPED); do \
	  $(BIN)/livecomp export $(MODEL_RUNS)/$$name --out exported/$$name --corpus-licence "$$(case $$name in \
	    piano) echo '$(LICENCE_piano)';; pop) echo '$(LICENCE_pop)';; *) echo '$(LICENCE_folk)';; esac)" && \
	  mkdir -p bench/checkpoints/shipped-$$name && \
	  cp $(MODEL_RUNS)/$$name/best.pt $(MODEL_RUNS)/$$name/best.json $(MODEL_RUNS)/$$name/best.png \
	     $(MODEL_RUNS)/$$name/config.json $(MODEL_RUNS)/$$name/log.jsonl bench/checkpoints/shipped-$$name/ || exit 1; \
	done
	$(BIN)/python bench/musicality.py --write-cards

clean:
	rm -rf $(VENV) $(DEMO_VENV) $(OUT)
