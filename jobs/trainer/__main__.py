import sys

from jobs.trainer.main import Config, main

sys.exit(main(Config.from_env()))
