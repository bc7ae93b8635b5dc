"""The training loop: one readable plain-PyTorch loop, run once per phase.

Training has two phases over the same loop: ``autoencoder`` (expression -> latent -> NB decoder),
then ``diffusion`` (latent diffusion conditioned on morphology sets, with EMA weights). Each step:
warmup-cosine LR, forward, backward, grad clipping, AdamW step, EMA update; periodic validation
loss; periodic checkpoint (safetensors + JSON, never pickle) from which ``resume`` continues
bit-for-bit. Randomness comes from explicit generators whose states are checkpointed.

The loop knows nothing of AnnData or the CLI; :mod:`phenoseq.model` builds the phases.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from .config import TrainConfig
from .errors import InputError
from .io import atomic_path


def resolve_device(name: str = "auto") -> torch.device:
    """The device to train / sample on: ``auto`` is this rank's CUDA device (``LOCAL_RANK``
    under torchrun) when PyTorch sees one, else the CPU."""
    if name not in ("auto", "cpu", "cuda") and not name.startswith("cuda:"):
        raise InputError(f"unknown --device '{name}'.", "use auto, cpu or cuda")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise InputError(f"--device {name} but PyTorch sees no CUDA device (a CPU build of "
                         "torch, or no GPU).", "use --device auto or cpu")  # fmt: skip
    n = torch.cuda.device_count()
    if name.startswith("cuda:"):
        index = name[5:]
        if not index.isdigit() or int(index) >= n:
            raise InputError(f"--device {name}: PyTorch sees {n} CUDA device(s) (0-{n - 1}).",
                             "pass an existing index, or cuda / auto")  # fmt: skip
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise InputError(f"--device {name} under torchrun puts every rank on one GPU.",
                             "use --device cuda (each rank takes its LOCAL_RANK's)")  # fmt: skip
        return torch.device(name)
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % n)


def autocast(device: torch.device, precision: str = "auto"):
    """The forward-pass context of a training step: bf16 autocast for ``precision="bf16"``, or
    ``"auto"`` on a CUDA device that supports bf16; plain fp32 otherwise."""
    if precision not in ("auto", "fp32", "bf16"):
        raise InputError(f"unknown --precision '{precision}'.", "use auto, fp32 or bf16")
    gpu_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if precision == "bf16" and device.type == "cuda" and not gpu_bf16:
        raise InputError(f"--precision bf16: {torch.cuda.get_device_name(device)} has no bf16.",
                         "use --precision fp32 (or auto)")  # fmt: skip
    use = precision == "bf16" or (precision == "auto" and gpu_bf16)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use)


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A host tensor on ``device``: through pinned memory, non-blocking, for a CUDA device."""
    if device.type != "cuda" or x.device == device:
        return x
    if x.device.type == "cpu":
        x = x.pin_memory()
    return x.to(device, non_blocking=True)


def world() -> tuple[int, int]:
    """``(rank, world size)`` of the torch.distributed job, ``(0, 1)`` outside one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(device: str = "cpu") -> tuple[int, int]:
    """Join the process group that ``torchrun`` describes in the environment (gloo on CPU,
    nccl on CUDA); a no-op for a single process. Returns ``(rank, world size)``."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if str(device).startswith("cuda") else "gloo")
    return world()


def shard(n: int) -> slice:
    """This rank's rows of a global batch of ``n`` rows (every rank draws the whole batch from
    the same generators and keeps its slice, so N processes see exactly one process's batch)."""
    rank, size = world()
    k = n // size
    return slice(rank * k, (rank + 1) * k)


class _PhaseLoss(torch.nn.Module):
    """The phase's trainable modules behind one ``forward`` (the loss), for DDP to wrap."""

    def __init__(self, phase: Phase):
        super().__init__()
        trainable = {id(p) for p in phase.params}
        self.mods = torch.nn.ModuleDict({
            name: m for name, m in phase.modules.items()
            if any(id(p) in trainable for p in m.parameters())
        })  # fmt: skip
        self._loss = phase.loss

    def forward(self, rng, gen) -> torch.Tensor:
        return self._loss(rng, gen)


def _freeze_unused(phase: Phase) -> None:
    """Freeze the parameters the loss never reaches (e.g. the token path without
    cross-attention). A single process never updates them (no gradient, so the optimizer skips
    them); DDP would hand them zero gradients instead, which weight decay and Adam's moments
    would act on. One probe backward (own generators, global RNG restored) finds them."""
    with torch.random.fork_rng(devices=[]):
        phase.loss(np.random.default_rng(0), torch.Generator().manual_seed(0)).backward()
    unused = [p for p in phase.params if p.grad is None]
    for p in phase.params:
        p.grad = None
    for p in unused:
        p.requires_grad_(False)


def set_seed(seed: int) -> None:
    """Seed Python, numpy's legacy global RNG and torch (library code uses explicit generators)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (third-party code may use the legacy RNG)
    torch.manual_seed(seed)


def lr_at(step: int, n_steps: int, base_lr: float, warmup: int, min_ratio: float = 0.05) -> float:
    """Linear warmup to ``base_lr`` over ``warmup`` steps, then cosine decay to ``min_ratio``."""
    if step < warmup:
        return base_lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, n_steps - warmup))
    return base_lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


@dataclass
class Phase:
    """One phase of training: what to optimise and how to compute its loss.

    ``loss(rng, generator)`` draws its own batch with the given numpy/torch generators.
    ``modules`` are checkpointed by name; ``ema`` (optional) tracks ``ema_of``.
    """

    name: str
    modules: dict[str, torch.nn.Module]
    params: list[torch.nn.Parameter]
    loss: Callable[[np.random.Generator, torch.Generator], torch.Tensor]
    n_steps: int
    lr: float
    val_loss: Callable[[], float] | None = None
    ema: object | None = None  # phenoseq.nn.EMA
    ema_of: torch.nn.Module | None = None


@dataclass
class TrainState:
    """Where training stands: finished phases, the current step, histories."""

    phase: str = ""
    step: int = 0
    done: list[str] = field(default_factory=list)
    history: dict[str, list[dict]] = field(default_factory=dict)
    stopped_early: bool = False


class Checkpointer:
    """Writes and reads the resumable training state in ``folder`` (atomically)."""

    def __init__(self, folder: Path | None):
        self.folder = Path(folder) if folder is not None else None

    def exists(self) -> bool:
        return self.folder is not None and (self.folder / "state.json").exists()

    def save(self, phase: Phase, opt: torch.optim.Optimizer, state: TrainState, rngs: dict) -> None:
        if self.folder is None or world()[0] != 0:  # only rank 0 writes
            return
        tensors, meta = _flatten_optimizer(opt.state_dict())
        for name, mod in phase.modules.items():
            tensors.update({f"module.{name}.{k}": v for k, v in mod.state_dict().items()})
        if phase.ema is not None:
            tensors.update({f"ema.{k}": v for k, v in phase.ema.state_dict().items()})
        tensors["rng.torch"] = rngs["torch"].get_state()
        tensors["rng.global"] = torch.get_rng_state()
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        doc = {
            "state": state.__dict__,
            "optimizer": meta,
            "numpy": rngs["numpy"].bit_generator.state,
        }
        with atomic_path(self.folder, is_dir=True) as tmp:
            save_file(tensors, tmp / "state.safetensors")
            (tmp / "state.json").write_text(json.dumps(doc))

    def load_modules(self, modules: dict[str, torch.nn.Module]) -> None:
        """Load module weights saved by any phase (e.g. the finished autoencoder)."""
        tensors = load_file(self.folder / "state.safetensors")
        for name, mod in modules.items():
            pre = f"module.{name}."
            sd = {k[len(pre) :]: v for k, v in tensors.items() if k.startswith(pre)}
            if sd:
                mod.load_state_dict(sd)

    def load(self, phase: Phase, opt: torch.optim.Optimizer, rngs: dict) -> TrainState:
        doc = json.loads((self.folder / "state.json").read_text())
        tensors = load_file(self.folder / "state.safetensors")
        self.load_modules(phase.modules)
        if phase.ema is not None:
            phase.ema.load_state_dict(
                {k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}
            )
        opt.load_state_dict(_unflatten_optimizer(tensors, doc["optimizer"]))
        rngs["torch"].set_state(tensors["rng.torch"])
        torch.set_rng_state(tensors["rng.global"])
        rngs["numpy"].bit_generator.state = doc["numpy"]
        return TrainState(**doc["state"])

    def read_state(self) -> TrainState:
        return TrainState(**json.loads((self.folder / "state.json").read_text())["state"])


def _flatten_optimizer(sd: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{idx}.{k}"] = v
            else:
                scalars[f"{idx}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        if key.startswith("opt."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    for key, v in meta["scalars"].items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = v
    return {"state": state, "param_groups": meta["param_groups"]}


def run_phase(
    phase: Phase,
    cfg: TrainConfig,
    state: TrainState,
    checkpointer: Checkpointer,
    seed: int,
    deadline: float | None = None,
    on_step: Callable[[str, int], None] | None = None,
    progress: bool = True,
) -> TrainState:
    """Optimise one phase to ``phase.n_steps`` (or the deadline), resuming if the state says so."""
    opt = torch.optim.AdamW(phase.params, lr=phase.lr, weight_decay=cfg.weight_decay)
    rngs = {"numpy": np.random.default_rng(seed), "torch": torch.Generator().manual_seed(seed)}
    if state.phase == phase.name and checkpointer.exists():
        state = checkpointer.load(phase, opt, rngs)
    else:
        state.phase, state.step = phase.name, 0
    history = state.history.setdefault(phase.name, [])
    for mod in phase.modules.values():
        mod.train()
    rank, size = world()
    compute, device = phase.loss, resolve_device(cfg.device)
    if size > 1:  # PyTorch DDP: gradients all-reduced (averaged) across ranks in backward
        from torch.nn.parallel import DistributedDataParallel

        _freeze_unused(phase)
        ids = [device.index] if device.type == "cuda" else None
        compute = DistributedDataParallel(_PhaseLoss(phase), device_ids=ids)
    bar = tqdm(total=phase.n_steps, initial=state.step, desc=phase.name,
               disable=not progress or rank != 0)  # fmt: skip
    running = None
    while state.step < phase.n_steps:
        for group in opt.param_groups:
            group["lr"] = lr_at(state.step, phase.n_steps, phase.lr, cfg.warmup_steps)
        with autocast(device, cfg.precision):
            loss = compute(rngs["numpy"], rngs["torch"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(phase.params, cfg.grad_clip)
        opt.step()
        if phase.ema is not None:
            phase.ema.update(phase.ema_of)
        state.step += 1
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        bar.update(1)
        if state.step % cfg.eval_every == 0 or state.step == phase.n_steps:
            record = {"step": state.step, "loss": running}
            if phase.val_loss is not None:
                record["val_loss"] = phase.val_loss()
                for mod in phase.modules.values():
                    mod.train()
            history.append(record)
            bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k != "step"})
        if state.step % cfg.checkpoint_every == 0 or state.step == phase.n_steps:
            checkpointer.save(phase, opt, state, rngs)
        if on_step is not None:
            on_step(phase.name, state.step)
        if deadline is not None and time.monotonic() > deadline:
            state.stopped_early = True
            break
    bar.close()
    for mod in phase.modules.values():
        mod.eval()
    if not state.stopped_early:
        state.done.append(phase.name)
    return state
