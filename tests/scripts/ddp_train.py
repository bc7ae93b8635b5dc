"""Train a tiny model from the paths in argv; run by tests/test_ddp.py alone or under torchrun.

Afterwards each process writes ``<out>.rank<RANK>.json`` (``RANK`` as torchrun set it, "single"
outside torchrun) with what torch.distributed itself reports: whether a process group exists,
this process's rank and the world size (a world size of 2 means both processes met in
``init_process_group``).
"""

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist

from phenoseq.config import InputConfig
from phenoseq.model import ModelConfig, train_model
from phenoseq.train import TrainConfig

torch.set_num_threads(1)
morph, expr, out = (Path(a) for a in sys.argv[1:4])
model = ModelConfig(n_latent=4, ae_hidden=16, ae_layers=1, d_model=16, cond_layers=1, n_tokens=2,
                    width=32, depth=2, cond_heads=2, ae_dropout=0.0)  # fmt: skip
train = TrainConfig(batch_size=16, set_size=4, ae_steps=5, max_steps=5, warmup_steps=2,
                    eval_every=5, checkpoint_every=5)  # fmt: skip
train_model(InputConfig(morph, expr), out, replace(model), train, progress=False)

seen = {"initialized": dist.is_available() and dist.is_initialized()}
if seen["initialized"]:
    seen |= {"rank": dist.get_rank(), "world_size": dist.get_world_size(),
             "backend": str(dist.get_backend())}  # fmt: skip
tag = os.environ.get("RANK", "single")
out.with_name(f"{out.name}.rank{tag}.json").write_text(json.dumps(seen))
