"""The trainer. Importing it makes Ultralytics safe in this process before Ultralytics is imported
(it reads these once, at its import): every weight file loads with weights_only=True against its
allow-list of model classes (ULTRALYTICS_SAFE_LOAD), and it never pip-installs at run time
(YOLO_AUTOINSTALL). The image and the local launcher set them too; main.py refuses to train if
Ultralytics was imported without them."""
import os

SAFE_ENV = {"ULTRALYTICS_SAFE_LOAD": "1", "YOLO_AUTOINSTALL": "false"}
os.environ.update(SAFE_ENV)
