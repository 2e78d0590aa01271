"""Stages 2 and 3: encode the training scenes once with the frozen VAE, then train the text
encoder and U-Net together on the noise-prediction loss.

The VAE is first rescaled so that latents times SD-1's 0.18215 have zero mean and unit
variance per channel (folded exactly into its 1x1 quant convolutions), so the exported model
works with the standard SD-1 scaling factor and noise schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812

from demo import scenes
from demo.aux_text import AttributeHeads, combo_labels, stated_mask
from demo.models import (
    LATENT_SCALE,
    build_noise_scheduler,
    build_text_encoder,
    build_unet,
    build_vae,
)
from demo.sampling import tokenize
from demo.train_vae import to_tensor
from demo.trainutil import (
    Ema,
    Logger,
    StopFlag,
    load_if_exists,
    lr_at,
    save_atomic,
    set_lr,
    step_generator,
)
from nodes.sd.tokenizer import BOS_ID, EOS_ID

UNCOND_PROB = 0.1  # caption dropped this often, so classifier-free guidance works
MIN_SNR_GAMMA = 5.0


@torch.no_grad()
def fold_latent_scale(vae, mean: torch.Tensor, std: torch.Tensor) -> None:
    """Make new latents = (old - mean) / (std * LATENT_SCALE), exactly, in place."""
    k = 1.0 / (std * LATENT_SCALE)
    qc, pqc = vae.quant_conv, vae.post_quant_conv
    c = mean.numel()
    qc.weight[:c] *= k.view(-1, 1, 1, 1)
    qc.bias[:c] = (qc.bias[:c] - mean) * k
    qc.bias[c:] += 2 * torch.log(k)
    pqc.bias += (pqc.weight[:, :, 0, 0] @ mean).view(-1)
    pqc.weight /= k.view(1, -1, 1, 1)


@torch.no_grad()
def encode_latents(out: Path, count: int, seed: int, log: Logger, batch: int = 200) -> None:
    """Fold the latent scale into the trained VAE (vae_final.pt) and encode `count` scenes."""
    vae = build_vae(seed)
    vae.load_state_dict(torch.load(out / "vae.pt", map_location="cpu")["model"])
    vae.eval()
    probe = to_tensor(scenes.batch(range(512), "train", seed)[0])
    z = vae.encode(probe).latent_dist.mean
    mean, std = z.mean(dim=(0, 2, 3)), z.std(dim=(0, 2, 3))
    log(f"raw latent mean {mean.tolist()} std {std.tolist()}")
    fold_latent_scale(vae, mean, std)
    save_atomic({"model": vae.state_dict()}, out / "vae_final.pt")
    latents, combos = [], []
    for start in range(0, count, batch):
        imgs, scs = scenes.batch(range(start, min(count, start + batch)), "train", seed)
        latents.append(vae.encode(to_tensor(imgs)).latent_dist.mean * LATENT_SCALE)
        combos += [s.combo for s in scs]
        if (start // batch) % 20 == 0:
            log(f"encoded {start + len(scs)}/{count}")
    lat = torch.cat(latents)
    log(f"scaled latent mean {lat.mean().item():.3f} std {lat.std().item():.3f}")
    save_atomic({"latents": lat, "combos": combos}, out / "latents.pt")


@dataclass
class UnetRun:
    out: Path
    steps: int = 1500
    batch: int = 64
    seed: int = 0
    lr: float = 5e-4
    ema_decay: float = 0.995
    save_every: int = 50
    eval_every: int = 250
    subset: int | None = None
    aux_weight: float = 0.0  # demo.aux_text attribute heads on the pooled text output
    init_from: Path | None = None  # start a fresh run from another run's EMA weights


def snr_weights(sched, t: torch.Tensor) -> torch.Tensor:
    """Min-SNR-style weighting: low-noise steps (SNR > gamma) count less, so the loss is
    not spent on fine detail the decoder cannot show. For v-prediction the weight stays 1
    down to SNR 0, where the layout (the prompt's position) is decided."""
    ac = sched.alphas_cumprod[t]
    snr = ac / (1 - ac).clamp(min=1e-8)
    if sched.config.prediction_type == "v_prediction":
        return torch.clamp(snr + 1, max=MIN_SNR_GAMMA) / (snr + 1)
    return torch.clamp(snr, max=MIN_SNR_GAMMA) / snr


def unet_loss(
    unet, te, sched, lat, ids, gen: torch.Generator, aux=None, teacher=None
) -> torch.Tensor:
    """Min-SNR-weighted v (or epsilon) loss; `aux(pooled_text)` adds a text-side term;
    `teacher(noisy, t, target) -> (target, per-sample weight)` may replace targets (the
    demo LoRA's prior preservation: demo.train_lora)."""
    noise = torch.randn(lat.shape, generator=gen)
    t = torch.randint(0, sched.config.num_train_timesteps, (lat.shape[0],), generator=gen)
    noisy = sched.add_noise(lat, noise, t)
    out = te(ids)
    pred = unet(noisy, t, encoder_hidden_states=out.last_hidden_state).sample
    v_pred = sched.config.prediction_type == "v_prediction"
    target = sched.get_velocity(lat, noise, t) if v_pred else noise
    weight = snr_weights(sched, t)
    if teacher is not None:
        target, scale = teacher(noisy, t, target)
        weight = weight * scale
    per = F.mse_loss(pred, target, reduction="none").mean(dim=(1, 2, 3))
    loss = (per * weight).mean()
    return loss if aux is None else loss + aux(out.pooler_output)


class CaptionIds:
    """Token ids of every training caption in three forms (full, without position, without
    size; partial prompts then still work) plus the empty caption for guidance dropout."""

    VARIANTS = ((True, True), (True, False), (False, True))  # (size, position)
    PARTIAL_PROB = 0.08  # each partial form is used this often

    def __init__(self, combos: list[tuple[str, ...]]):
        uniq = sorted(set(combos))
        row = {c: i for i, c in enumerate(uniq)}
        texts = [
            scenes.Scene(*c).describe(size=sz, position=ps)
            for sz, ps in self.VARIANTS
            for c in uniq
        ]
        ids = tokenize(texts + [""])
        self.table = ids[:-1].view(len(self.VARIANTS), len(uniq), -1)
        self.empty = ids[-1]
        self.index = torch.tensor([row[c] for c in combos])

    def variant(self, u: torch.Tensor) -> torch.Tensor:
        return (u < self.PARTIAL_PROB).long() + (u < 2 * self.PARTIAL_PROB).long()

    def batch(
        self, idx: torch.Tensor, drop: torch.Tensor, u: torch.Tensor, gen: torch.Generator
    ) -> torch.Tensor:
        """`u`: uniform draws choosing each sample's caption form. Half of the dropped
        captions become "" and half a few random vocabulary tokens, so that a negative
        prompt of words never seen in training ("blurry, low quality") also acts as the
        unconditional branch."""
        variant = self.variant(u)
        ids = self.table[variant, self.index[idx]].clone()
        ids[drop] = self.empty
        for row in torch.nonzero(drop).flatten().tolist():
            if torch.rand((), generator=gen) < 0.5:
                n = int(torch.randint(1, 9, (), generator=gen))
                ids[row, 1 : n + 1] = torch.randint(0, BOS_ID, (n,), generator=gen)
                ids[row, n + 1 :] = EOS_ID
        return ids


def batch_indices(run: UnetRun, step: int, n: int) -> torch.Tensor:
    """Epoch-wise permutations derived from the seed: reproducible and resumable."""
    per_epoch = n // run.batch
    epoch, k = divmod(step, per_epoch)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(run.seed * 7 + epoch))
    return perm[k * run.batch : (k + 1) * run.batch]


def ema_weights(state: dict, part: str, index: int) -> dict[str, torch.Tensor]:
    """A checkpoint's EMA shadow of one module, by parameter name: the shadow is stored in
    ``parameters()`` order, the order of the state dict (these modules have no buffers)."""
    names, shadow = list(state[part]), state["ema"]["shadow"][index]
    if len(names) != len(shadow):
        raise ValueError(f"EMA of {part} does not match its state dict")
    return dict(zip(names, shadow, strict=True))


def init_weights(path: Path, unet, te, heads, log: Logger) -> None:
    """Start from another run's EMA U-Net and text encoder (and attribute heads): a new
    objective, schedule or a U-Net with fewer blocks reuses the features already learned.
    Every parameter of the new U-Net must exist in the source; source blocks the new one
    lacks are dropped (and named in the log)."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    for module, part, index in ((unet, "unet", 0), (te, "te", 1)):
        own = dict(module.named_parameters())
        src = ema_weights(state, part, index)
        missing = sorted(set(own) - set(src))
        if missing:
            raise ValueError(f"{path}: no weights for {part} parameters {missing[:3]}...")
        dropped = sorted({".".join(k.split(".")[:3]) for k in set(src) - set(own)})
        if dropped:
            log(f"init: {part} blocks not in the new model: {', '.join(dropped)}")
        with torch.no_grad():
            for k, p in own.items():
                p.copy_(src[k])
    if heads is not None and "aux" in state:
        heads.load_state_dict(state["aux"])


def _aux_loss(heads, labels, mask, weight: float, pooled: torch.Tensor) -> torch.Tensor:
    return weight * heads.loss(pooled, labels, mask)


def train_unet(run: UnetRun, log: Logger, eval_fn=None) -> dict[str, float]:
    """Train (or resume) text encoder + U-Net; checkpoints to run.out / 'unet.pt'."""
    data = torch.load(run.out / "latents.pt", map_location="cpu")
    lat, caps = data["latents"], [tuple(c) for c in data["combos"]]
    if run.subset:
        lat, caps = lat[: run.subset], caps[: run.subset]
    ids = CaptionIds(caps)
    unet, te, sched = build_unet(run.seed), build_text_encoder(run.seed), build_noise_scheduler()
    params = list(unet.parameters()) + list(te.parameters())
    opt = torch.optim.AdamW(params, lr=run.lr, weight_decay=0.01)
    heads = AttributeHeads(te.config.hidden_size) if run.aux_weight > 0 else None
    labels = combo_labels(caps)
    ckpt_path = run.out / "unet.pt"
    start = 0
    state = load_if_exists(ckpt_path)
    if state is not None:
        unet.load_state_dict(state["unet"])
        te.load_state_dict(state["te"])
        if heads is not None and "aux" in state:
            heads.load_state_dict(state["aux"])
            opt.add_param_group({"params": list(heads.parameters())})
        opt.load_state_dict(state["opt"])
        start = state["step"]
        log(f"resumed U-Net at step {start}")
    elif run.init_from is not None:
        init_weights(run.init_from, unet, te, heads, log)
        log(f"initialised U-Net and text encoder from {run.init_from} (EMA weights)")
    ema = Ema([unet, te], run.ema_decay)  # shadows the weights the run starts from
    if state is not None:
        ema.load_state_dict(state["ema"])
    if heads is not None and len(opt.param_groups) == 1:
        opt.add_param_group({"params": list(heads.parameters())})
    unet.train()
    te.train()
    losses: list[float] = []
    first = last = math.nan
    flag = StopFlag()
    for step in range(start, run.steps):
        set_lr(opt, lr_at(step, run.steps, run.lr, warmup=100))
        gen = step_generator(run.seed, step, 2)
        idx = batch_indices(run, step, lat.shape[0])
        drop = torch.rand(len(idx), generator=gen) < UNCOND_PROB
        form = torch.rand(len(idx), generator=gen)
        aux = None
        if heads is not None:
            mask = stated_mask(drop, ids.variant(form))
            aux = partial(_aux_loss, heads, labels[idx], mask, run.aux_weight)
        loss = unet_loss(unet, te, sched, lat[idx], ids.batch(idx, drop, form, gen), gen, aux)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema.update([unet, te])
        losses.append(loss.item())
        if step == start:
            first = losses[0]
        if (step + 1) % 25 == 0 or step + 1 == run.steps:
            last = float(np.mean(losses))
            log(f"unet step {step + 1}/{run.steps} loss {last:.4f}")
            losses = []
        if (step + 1) % run.save_every == 0 or step + 1 == run.steps or flag.stop:
            save_atomic(
                {
                    "unet": unet.state_dict(),
                    "te": te.state_dict(),
                    "opt": opt.state_dict(),
                    "ema": ema.state_dict(),
                    "step": step + 1,
                    **({"aux": heads.state_dict()} if heads is not None else {}),
                },
                ckpt_path,
            )
        if flag.stop:
            log(f"stopped at step {step + 1} (checkpoint saved)")
            break
        if eval_fn is not None and (step + 1) % run.eval_every == 0:
            log(f"unet step {step + 1} eval {eval_fn(ema)}")
    flag.close()
    return {"first_loss": first, "last_loss": last}
