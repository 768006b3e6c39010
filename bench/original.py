"""Running the original google-research/electra code beside ours, to measure it.

The original runs from its measurement tools (`--original-tools DIR`, by default
`shared/tools` beside the repository): `orig_electra_env` builds, once, a TF 2.21 + tf_keras
environment under /tmp with a copy of the original's code and prints its Python (`--src`:
the code's folder); `bench_original.py` times its pretraining step. The original is only
run; none of its code is in this project. Its processes are started fresh, through
`common.run_process`, which reports their peak RSS.
"""

import os
import subprocess

import common  # bench/common.py: puts the repository on sys.path

# Where the original's measurement tools live by default: `shared/tools` beside the
# repository (the project's development machines have them there; users pass their own).
TOOLS = os.path.join(os.path.dirname(common.REPO), "shared", "tools")
NAME = "original TF1 float32"


def add_options(parser):
    """Adds `--original auto|on|off` and `--original-tools DIR` to an argparse parser."""
    parser.add_argument("--original", default="auto", choices=("auto", "on", "off"),
                        help="measure the original TF1 code too: auto = when its "
                             "environment is available (on: an error if not)")
    parser.add_argument("--original-tools", default=TOOLS,
                        help="directory of bench_original.py and orig_electra_env")


def available(args):
    """(whether the original can run, why not), as `args.original` and
    `args.original_tools` say: `orig_electra_env` builds or finds its environment (its own
    message says what is missing).

    Raises:
        RuntimeError: `--original on` and the original cannot run.
    """
    if args.original == "off":
        return False, "--original off"
    ok, why = True, ""
    tool = os.path.join(args.original_tools, "orig_electra_env")
    if not os.path.exists(tool):
        ok, why = False, f"{tool} not found"
    else:
        done = subprocess.run([tool], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, check=False)
        if done.returncode != 0:
            lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
            ok, why = False, lines[0] if lines else f"{tool} exited {done.returncode}"
    if args.original == "on" and not ok:
        raise RuntimeError(f"--original on, but the original cannot run: {why}")
    return ok, why


def environment(tools):
    """(the original's Python, the folder of its code), from `orig_electra_env` in `tools`."""
    tool = os.path.join(tools, "orig_electra_env")
    return tuple(subprocess.run([tool, *flag], stdout=subprocess.PIPE, check=True,
                                text=True).stdout.strip() for flag in ([], ["--src"]))
