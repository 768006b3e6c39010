"""`python -m electra_quickstart`: the main job (see `electra_quickstart.cli`)."""

from electra_quickstart.cli import run

run()
