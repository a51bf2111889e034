# One entry point. `make demo` and `make test` do all the set-up on a fresh machine.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FIREBASE_TOOLS_VERSION := 15.34.2
FIREBASE := .tools/node_modules/.bin/firebase
CHECKOV := $(VENV)/checkov/bin/checkov
# The tests that need no local stack, with the network cut (docs/tests.md: why, and the fallback where it cannot be)
UNIT_TESTS := infra/local/offline.sh $(PY) -m pytest -q -m "not integration" -n auto

.PHONY: demo test lint unit system-packages up down bench-ingest bench-train bench-materialize bench-functions bench-predict bench-push bench-import bench-reindex bench-page venv tools clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml jobs/trainer/requirements.txt $(wildcard functions/*/requirements.txt)
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@# One cv2: prediction's opencv-python-headless (functions/*/requirements.txt) replaces the opencv-python that
	@# Ultralytics pulls in (the same OpenCV, without GUI libraries); both write cv2/, so reinstall it after.
	$(PY) -m pip uninstall --quiet --yes opencv-python
	$(PY) -m pip install --quiet --force-reinstall --no-deps $$(grep -ho '^opencv-python-headless==[^ ]*' functions/predict/requirements.txt)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .   # the `yolodrop` command (its dependencies are in requirements-dev.txt)
	touch $(STAMP)

venv: $(STAMP)

system-packages:      # the emulators, Java, Node.js and Chromium (apt), installed when missing, saying what
	@infra/local/system_packages.sh

$(FIREBASE): | system-packages  # the Firebase Auth emulator of the local stack (npm; Node.js, no Java)
	npm install --no-save --no-audit --no-fund --loglevel=error --prefix .tools firebase-tools@$(FIREBASE_TOOLS_VERSION)

tools: $(FIREBASE)

$(CHECKOV): infra/terraform/requirements-checkov.txt   # its own venv: its pins would downgrade the project's
	python3 -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/pip install --quiet -r infra/terraform/requirements-checkov.txt
	touch $(CHECKOV)

demo: system-packages $(STAMP) $(FIREBASE)        ## drop the sample dataset on the local stack, show its index, train a model on it
	$(PY) -m infra.local.demo

test: system-packages $(STAMP) $(FIREBASE) $(CHECKOV)  ## lint and types first (fail fast), then the whole suite in two runs, both counted: the tests that need no stack offline, then those on the local stack (on free ports)
	$(MAKE) --no-print-directory lint
	failed=0; $(UNIT_TESTS) || failed=1; $(PY) -m pytest -q -m integration || failed=1; exit $$failed

lint: $(STAMP)         ## ruff, then mypy (pyproject.toml: the rules and why; docs/tests.md)
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/mypy

unit: $(PY)           ## only the tests that need no emulator and no network, run with the network cut (a venv must exist; `make venv` refreshes it)
	$(UNIT_TESTS)

$(PY):                # a venv at all, never refreshed: what `unit` needs, so it runs offline once the venv is there
	$(MAKE) venv

up: $(STAMP) $(FIREBASE)          ## start the local stack and leave it running (.local/stack.env)
	$(PY) -m infra.local.stack up

down:                 ## stop what `make up` started
	$(PY) -m infra.local.stack down

bench-ingest: $(STAMP) $(FIREBASE) ## N=1000 images dropped at once; see docs/performance.md
	$(PY) -m bench.ingest $(ARGS)

bench-train: $(STAMP) $(FIREBASE)  ## 500 generated images: training overhead and materialization rate; see docs/performance.md
	$(PY) -m bench.train $(ARGS)

bench-materialize: $(STAMP) $(FIREBASE)  ## 2,000 images of a version: downloaded against linked through a mount (time, disk); see docs/performance.md
	$(PY) -m bench.materialize $(ARGS)

bench-predict: $(STAMP) $(FIREBASE)  ## the prediction function against Ultralytics: cold start, warm latency, throughput; see docs/performance.md
	$(PY) -m bench.predict $(ARGS)

bench-export: $(STAMP) $(FIREBASE)  ## 5,000 images: versions, YOLO and COCO exports against raw copies, peak memory; see docs/performance.md
	$(PY) -m bench.export $(ARGS)

bench-push: $(STAMP) $(FIREBASE)  ## yolodrop push of 2,000 images against raw parallel uploads with the storage client; see docs/performance.md
	$(PY) -m bench.push $(ARGS)

bench-import: $(STAMP) $(FIREBASE)  ## 20,000 images (2 GB) imported from a loopback URL by 1 and 4 tasks against raw uploads, task memory, time to exact stats; see docs/performance.md
	$(PY) -m bench.imports $(ARGS)

bench-reindex: $(STAMP) $(FIREBASE)  ## 20,000 objects: a reindex of a lost and of an intact index against ingest of the same files; see docs/performance.md
	$(PY) -m bench.reindex $(ARGS)

bench-page: $(STAMP) $(FIREBASE)  ## the page in headless Chromium: 100 thumbnails painted, first-load transfer; see docs/performance.md
	$(PY) -m bench.page $(ARGS)

bench-functions: $(STAMP)  ## each function's import time, idle memory and dependency size; see docs/performance.md
	$(PY) -m bench.functions $(ARGS)

clean:
	rm -rf $(VENV) .local .tools
