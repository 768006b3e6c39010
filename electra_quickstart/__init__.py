"""The main job: the whole mission of ELECTRA on data it makes itself, on CPU.

The top layer of the project (it imports `finetune`, `electra_tf`, `pretrain_data` and
`electra_common`; nothing imports it):

- `pipeline`: the main job as a library call, one function per stage
  (`run_quickstart`).
- `cli`: the command line, `python -m electra_quickstart` (`electra-quickstart`).
"""
