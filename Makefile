# One entry point for a fresh machine: `make demo` runs livecomp on its shipped
# defaults (building .venv-demo, the runtime alone), `make test` runs the whole suite
# (building .venv with the training and test extras).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= out

.PHONY: demo test deps bench models clean more-piano

# constraints.txt pins torch to the CPU build that the training extra would
# otherwise resolve to a multi-GB CUDA build; pyproject keeps the honest range.
$(STAMP): pyproject.toml setup.py livecomp/_jackmidi.c livecomp/_jackmidi.h constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip 'setuptools>=77'
	$(BIN)/pip install --quiet -c constraints.txt -e '.[train,test]'
	touch $(STAMP)

# The demo needs the runtime alone (numpy, mido, python-rtmidi, typer, onnxruntime): a venv of its
# own without torch, onnx or the test tools, so a first run downloads no training stack.
DEMO_VENV  ?= .venv-demo
DEMO_STAMP := $(DEMO_VENV)/.installed
$(DEMO_STAMP): pyproject.toml setup.py livecomp/_jackmidi.c livecomp/_jackmidi.h
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

# The system packages the live and audio tests use, on Debian or Ubuntu as root: a JACK server
# (jackd2, run on its dummy driver), fluidsynth and a General MIDI soundfont. Where they are
# missing, those tests skip and say why; the suite never installs anything itself.
deps:
	@if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo "jackd2 jackd/tweak_rt_limits boolean false" | debconf-set-selections; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends jackd2 fluidsynth timgm6mb-soundfont; \
	else \
	  echo "make deps installs with apt-get as root; elsewhere install jackd2 (or JACK), fluidsynth and a GM soundfont"; \
	fi

bench: $(STAMP)
	$(BIN)/python bench/convert.py
	$(BIN)/python bench/table.py
	$(BIN)/python bench/latency.py

# The shipped models, exported to livecomp/exported/<name>, their checkpoints kept in
# bench/checkpoints/shipped-<name>, each trained from its recipe in recipes/ (what it learns from,
# its sizes and schedule, and how long: recipes/NAME.toml says it). piano trains in six phases
# (piano-first, piano-classical on classical piano; piano-all-first, piano-all with pop and folk
# added; piano-joint, each chunk's keys drawn 4 at a time; piano, the group link), pop in five
# (pop-plain, pop-lookback, pop-joint, pop-link, pop), folk in four (folk-plain, folk-joint,
# folk-link, folk), each from the one before's weights (pop's and folk's last phases train on from
# the one before). Time budgets: a rerun lands near, not exactly on, the same weights; basic and
# folk-plain are epoch-limited with a fixed seed, so a rerun rebuilds the same weights (same torch
# build). piano answers with 8 candidate
# bars (its bar at 16 is twice as long, bench/latency.py), the others with 16.
MODEL_RUNS ?= runs/models
SHIPPED    ?= piano pop folk basic
# more-piano goes on from the shipped piano's weights (bench/checkpoints/shipped-piano) for another
# 145 minutes of cosine schedule (recipes/piano.toml's), into runs/models/piano-more.
more-piano: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/livecomp train --recipe recipes/piano.toml --init-from bench/checkpoints/shipped-piano \
	  --quiet --out $(MODEL_RUNS)/piano-more

LICENCE_pop   := POP909: MIT (Wang et al. 2020); arrangements of copyrighted songs
LICENCE_folk  := Nottingham Music Database (Jukedeck cleaning): GPL-3.0
LICENCE_piano := piano-midi.de: CC BY-SA 3.0 DE (Bernd Krueger); Mutopia Project: public domain, CC BY or CC BY-SA \
per piece; POP909: MIT (Wang et al. 2020), arrangements of copyrighted songs; $(LICENCE_folk)

# one run: make run-NAME trains runs/models/NAME from recipes/NAME.toml
run-%: $(STAMP)
	rm -rf $(MODEL_RUNS)/$*
	OMP_NUM_THREADS=1 $(BIN)/livecomp train --recipe recipes/$*.toml --quiet --out $(MODEL_RUNS)/$*

run-piano: run-piano-joint
run-piano-joint: run-piano-all
run-piano-all: run-piano-all-first
run-piano-all-first: run-piano-classical
run-piano-classical: run-piano-first
run-pop: run-pop-link
run-pop-link: run-pop-joint
run-pop-joint: run-pop-lookback
run-pop-lookback: run-pop-plain
run-folk: run-folk-link
run-folk-link: run-folk-joint
run-folk-joint: run-folk-plain

models: $(addprefix run-,$(SHIPPED))
	for name in $(SHIPPED); do \
	  $(BIN)/livecomp export $(MODEL_RUNS)/$$name --out livecomp/exported/$$name \
	    $$(case $$name in piano) echo --candidates 8;; esac) --corpus-licence "$$(case $$name in \
	    piano) echo '$(LICENCE_piano)';; pop) echo '$(LICENCE_pop)';; *) echo '$(LICENCE_folk)';; esac)" && \
	  mkdir -p bench/checkpoints/shipped-$$name && \
	  cp $(MODEL_RUNS)/$$name/best.pt $(MODEL_RUNS)/$$name/best.json $(MODEL_RUNS)/$$name/best.png \
	     $(MODEL_RUNS)/$$name/config.json $(MODEL_RUNS)/$$name/log.jsonl bench/checkpoints/shipped-$$name/ || exit 1; \
	done
	$(BIN)/python bench/musicality.py --write-cards

clean:
	rm -rf $(VENV) $(DEMO_VENV) $(OUT)
