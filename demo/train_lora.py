"""Train the demo LoRA: the new shape word "brick" on the shipped `builtin/shapes-demo`.

    python -m demo.train_lora latents [--count 6000]      # encode the scenes once
    python -m demo.train_lora train [--steps 1500] [--rank 8] [--threads 1]
    python -m demo.train_lora export                      # -> builtin_models/loras/

Half of the scenes show a brick (demo.scenes.lora_scene_for), half are ordinary scenes,
so the adapters learn the new word without drifting on the others; with `--prior distill`
the ordinary scenes' targets are the frozen base model's own predictions
(demo.lora_prior). The base U-Net, text
encoder and VAE stay frozen (loaded from the shipped file, as a user's LoRA trainer
would); only the low-rank pairs (demo.lora) train, on the base model's own loss
(v-prediction, min-SNR weights, caption dropout for guidance: demo.train_unet). Each
stage resumes when rerun; the checkpoint is saved every 50 steps and on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from demo import scenes
from demo.judge import accuracy
from demo.lora import UNET_LAYERS, LoraSet, save_kohya
from demo.lora_prior import PRIORS, distill_teacher, prior_rows
from demo.models import LATENT_SCALE, build_noise_scheduler
from demo.sampling import generate
from demo.train_unet import UNCOND_PROB, CaptionIds, batch_indices, unet_loss
from demo.trainutil import (
    Logger,
    StopFlag,
    load_if_exists,
    lr_at,
    save_atomic,
    set_lr,
    step_generator,
)
from graph.context import Resources
from graph.workspace import Workspace
from nodes.sd.builtin_loras import BUILTIN_LORAS_DIR
from nodes.sd.checkpoints import load_checkpoint
from nodes.vae_encode import encode

BASE = "builtin/shapes-demo"
NAME = f"shapes-demo-{scenes.LORA_SHAPE}"
LORAS_DIR = BUILTIN_LORAS_DIR
DEFAULT_OUT = Path("data/demo-lora")
EVAL_CFG = 2.0  # the cfg of bench/demo_quality.py


def load_base():
    """(unet, text_encoder, vae handle) of the shipped demo model, fp32 on the CPU."""
    tmp = Path(tempfile.mkdtemp(prefix="demo-lora-"))
    model, clip, vae = load_checkpoint(
        Workspace.at(tmp, tmp / "models"), Resources(), BASE, "fp32", "cpu"
    )
    return model.unet, clip.text_encoder, vae


@torch.no_grad()
def encode_latents(out: Path, count: int, seed: int, log: Logger, batch: int = 200) -> None:
    _, _, vae = load_base()
    latents, combos = [], []
    for start in range(0, count, batch):
        scs = [
            scenes.lora_scene_for(i, "train", seed) for i in range(start, min(count, start + batch))
        ]
        x = torch.from_numpy(np.stack([scenes.render(s) for s in scs])).float() / 255
        latents.append(encode(vae, x))
        combos += [s.combo for s in scs]
        log(f"encoded {start + len(scs)}/{count}")
    save_atomic({"latents": torch.cat(latents), "combos": combos}, out / "latents.pt")


@dataclass
class LoraRun:
    out: Path
    steps: int = 1500
    batch: int = 32
    seed: int = 0
    lr: float = 2e-3
    rank: int = 8
    alpha: float = 4.0
    save_every: int = 50
    eval_every: int = 250
    eval_prompts: int = 100  # per set: brick prompts and ordinary prompts
    stop_at: int | None = None  # end here, saved, within the schedule of `steps`
    prior: str = "distill"  # demo.lora_prior.PRIORS
    prior_weight: float = 4.0  # loss weight of the distilled (non-brick) samples
    unet_layers: str = "blocks"  # demo.lora.UNET_LAYERS


def held_out_bricks(n: int, seed: int = 0) -> list[scenes.Scene]:
    """Held-out LoRA scenes that show a brick (combinations and seeds never trained on)."""
    out, i = [], 0
    while len(out) < n:
        sc = scenes.lora_scene_for(i, "eval", seed)
        if sc.shape == scenes.LORA_SHAPE:
            out.append(sc)
        i += 1
    return out


def eval_sets(n: int, seed: int) -> dict[str, list[scenes.Scene]]:
    """Held-out brick and ordinary prompts for judging during training, drawn with seed
    `seed + 1` so they are apart from bench/demo_lora.py's (seed 0): picking a step on
    them does not tune the bench's figures."""
    ordinary = [scenes.scene_for(i, "eval", seed + 1) for i in range(n)]
    return {"brick": held_out_bricks(n, seed + 1), "ordinary": ordinary}


def evaluate(unet, te, vae, lora: LoraSet, scene_list, strength: float = 1.0) -> dict[str, float]:
    lora.set_strength(strength)
    prompts = [s.caption for s in scene_list]
    images = generate(unet, te, vae.vae, prompts, LATENT_SCALE, steps=20, cfg=EVAL_CFG)
    lora.set_strength(1.0)
    return {k: round(v, 3) for k, v in accuracy(images, scene_list).items()}


def train(run: LoraRun, log: Logger) -> dict[str, float]:
    data = torch.load(run.out / "latents.pt", map_location="cpu")
    lat, caps = data["latents"], [tuple(c) for c in data["combos"]]
    ids = CaptionIds(caps)
    shows_word = torch.tensor([c[0] == scenes.LORA_SHAPE for c in caps])
    unet, te, vae = load_base()
    lora = LoraSet({"unet": unet, "text_encoder": te}, run.rank, run.alpha, run.unet_layers)
    opt = torch.optim.AdamW(lora.parameters(), lr=run.lr, weight_decay=0.0)
    sched = build_noise_scheduler()
    path = run.out / "lora.pt"
    state = load_if_exists(path)
    start = 0
    if state is not None:
        lora.load_state_dict(state["lora"])
        opt.load_state_dict(state["opt"])
        start = state["step"]
        log(f"resumed LoRA at step {start}")
    log(f"{sum(p.numel() for p in lora.parameters())} LoRA parameters, {len(lora.adapters)} layers")
    evals = eval_sets(run.eval_prompts, run.seed)
    for k, v in evals.items():  # the reference: the base model on the same prompts
        log(f"base model on {len(v)} held-out {k} prompts: {evaluate(unet, te, vae, lora, v, 0.0)}")
    flag, losses, last = StopFlag(), [], float("nan")
    for step in range(start, run.steps):
        set_lr(opt, lr_at(step, run.steps, run.lr, warmup=50))
        gen = step_generator(run.seed, step, 5)
        idx = batch_indices(run, step, lat.shape[0])
        drop = torch.rand(len(idx), generator=gen) < UNCOND_PROB
        form = torch.rand(len(idx), generator=gen)
        caption_ids = ids.batch(idx, drop, form, gen)
        teacher = None
        if run.prior == "distill":
            rows = prior_rows(shows_word[idx], drop)
            teacher = distill_teacher(unet, te, lora, caption_ids, rows, run.prior_weight)
        loss = unet_loss(unet, te, sched, lat[idx], caption_ids, gen, teacher=teacher)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lora.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if (step + 1) % 25 == 0 or step + 1 == run.steps:
            last = float(np.mean(losses))
            log(f"lora step {step + 1}/{run.steps} loss {last:.4f}")
            losses = []
        if (step + 1) % run.save_every == 0 or step + 1 in (run.steps, run.stop_at) or flag.stop:
            save_atomic(
                {
                    "lora": lora.state_dict(),
                    "opt": opt.state_dict(),
                    "step": step + 1,
                    "run": vars(run) | {"out": str(run.out)},
                },
                path,
            )
        if flag.stop or step + 1 == run.stop_at:
            log(f"stopped at step {step + 1} (checkpoint saved)")
            break
        if (step + 1) % run.eval_every == 0:
            accs = {k: evaluate(unet, te, vae, lora, v) for k, v in evals.items()}
            for k, acc in accs.items():
                log(f"lora step {step + 1} eval on {len(evals[k])} held-out {k} prompts: {acc}")
            snapshot = {"lora": lora.state_dict(), "step": step + 1, "eval": accs}
            save_atomic(
                snapshot | {"run": vars(run) | {"out": str(run.out)}},
                snapshot_path(run.out, step + 1),
            )
    flag.close()
    return {"last_loss": last}


def train_command(run: dict, step: int) -> str:
    """The commands that rebuild a file trained to `step` (the checkpoint there equals
    the snapshot evaluated there: data, noise and batch order are functions of step)."""
    flags = (
        f"--steps {run['steps']} --lr {run['lr']:g} --prior {run.get('prior', 'data')} "
        f"--prior-weight {run.get('prior_weight', 1.0):g} "
        f"--unet-layers {run.get('unet_layers', 'blocks')}"
    )
    return f"python -m demo.train_lora latents|train {flags} --stop-at {step}|export"


def snapshot_path(out: Path, step: int) -> Path:
    """The adapters as evaluated at `step` (kept, so export can take the best step)."""
    return out / "evals" / f"step-{step}.pt"


def export(out: Path, dest: Path = LORAS_DIR, step: int | None = None) -> dict:
    """Write <dest>/shapes-demo-brick.safetensors (kohya, fp16) and its .json record,
    from the last checkpoint or from the snapshot evaluated at `step`."""
    path = out / "lora.pt" if step is None else snapshot_path(out, step)
    state = torch.load(path, map_location="cpu", weights_only=False)
    run = state["run"]
    unet, te, _ = load_base()
    unet_layers = run.get("unet_layers", "blocks")
    lora = LoraSet({"unet": unet, "text_encoder": te}, run["rank"], run["alpha"], unet_layers)
    lora.load_state_dict(state["lora"])
    weights = dest / f"{NAME}.safetensors"
    meta = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(run["rank"]),
        "ss_network_alpha": str(run["alpha"]),
        "ss_base_model": BASE,
        "sdgraph.trigger": scenes.LORA_SHAPE,
    }
    save_kohya(lora, weights, meta)
    from demo.export import sha256_of

    record = {
        "file": weights.name,
        "lora": f"builtin/{NAME}",
        "base": BASE,
        "sha256": sha256_of(weights),
        "bytes": weights.stat().st_size,
        "format": "kohya (lora_unet_*, lora_te_*, .alpha"
        + ("; LoCon convolutions), float16" if unet_layers == "blocks" else "), float16"),
        "teaches": f'the shape word "{scenes.LORA_SHAPE}": a rectangle 3 times as wide as tall',
        "training": {k: run[k] for k in ("steps", "batch", "seed", "lr", "rank", "alpha")}
        | {
            "brick_share": scenes.LORA_SHARE,
            "prior": run.get("prior", "data"),
            "prior_weight": run.get("prior_weight", 1.0),
            "unet_layers": unet_layers,
            "trained_steps": int(state["step"]),
            "command": train_command(run, int(state["step"])),
        }
        | ({"training_eval": state["eval"]} if "eval" in state else {}),
        "params": sum(p.numel() for p in lora.parameters()),
        "layers": len(lora.adapters),
    }
    (dest / f"{NAME}.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("stage", choices=["latents", "train", "export"])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--count", type=int, default=6000)
    p.add_argument("--steps", type=int, default=LoraRun.steps)
    p.add_argument("--batch", type=int, default=LoraRun.batch)
    p.add_argument("--lr", type=float, default=LoraRun.lr)
    p.add_argument("--rank", type=int, default=LoraRun.rank)
    p.add_argument("--alpha", type=float, default=LoraRun.alpha)
    p.add_argument("--eval-every", type=int, default=LoraRun.eval_every)
    p.add_argument("--eval-prompts", type=int, default=LoraRun.eval_prompts)
    p.add_argument("--stop-at", type=int, default=None, help="stop (saved) at this step")
    p.add_argument("--prior", choices=PRIORS, default=LoraRun.prior, help="demo.lora_prior")
    p.add_argument("--prior-weight", type=float, default=LoraRun.prior_weight)
    p.add_argument("--unet-layers", choices=UNET_LAYERS, default=LoraRun.unet_layers)
    p.add_argument("--step", type=int, default=None, help="export: the snapshot of this step")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    log = Logger(a.out / "log.txt")
    if a.stage == "latents":
        encode_latents(a.out, a.count, a.seed, log)
    elif a.stage == "train":
        run = LoraRun(a.out, a.steps, a.batch, a.seed, a.lr, a.rank, a.alpha)
        run.eval_every, run.eval_prompts, run.stop_at = a.eval_every, a.eval_prompts, a.stop_at
        run.prior, run.prior_weight, run.unet_layers = a.prior, a.prior_weight, a.unet_layers
        log(f"done: {train(run, log)}")
    else:
        print(json.dumps(export(a.out, step=a.step), indent=2))


if __name__ == "__main__":
    main()
