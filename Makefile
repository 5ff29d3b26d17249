# One entry point for a fresh machine: `make demo` runs livecomp on its shipped
# defaults, `make test` runs the whole suite. Both build .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= out

.PHONY: demo test bench clean

# constraints.txt pins torch to the CPU build that the training extra would
# otherwise resolve to a multi-GB CUDA build; pyproject keeps the honest range.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[train,test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/livecomp roll --png $(OUT)/demo.png --midi-out $(OUT)/demo.mid

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/convert.py

clean:
	rm -rf $(VENV) $(OUT)
