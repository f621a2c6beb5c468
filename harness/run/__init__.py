"""One run: a resolved config -> a run directory (docs/design.md, "The run").

- build.py: `Run`, everything built from the config (device, data, model, examples, sampler, optimizer);
- loop.py: `train` and `Loop`, the one step loop with its evaluation, checkpoint, stop, branch and divergence
  hooks (the throughput model and the benchmarks step through it too);
- checkpoint.py: the checkpoint file (weights only) and the training state it restores;
- batches.py: training windows and evaluation inputs; transfer.py: pretrain -> fine-tune; tracking.py: MLflow;
- record.py: the evaluation rows, the result row and the log;
- distributed.py: data-parallel ranks (gloo on CPU, NCCL on CUDA) and `launch` for `train --nproc`.
"""

from harness.run.build import Run
from harness.run.loop import Loop, train, trim_to_budget

__all__ = ["Loop", "Run", "train", "trim_to_budget"]
