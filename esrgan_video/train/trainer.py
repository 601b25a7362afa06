"""The training loop: one object that owns the networks, the optimisers, the data and the run folder.

    from esrgan_video.train import TrainConfig, Trainer
    result = Trainer(TrainConfig(data=["episode1.mkv"], base="RealESRGAN_x4plus_anime_6B", out="runs/x",
                                 stage="psnr", steps=200)).run()

Setup checks everything a user can get wrong (sources, patch sizes, scales, the base model, the checkpoint
to resume, option values) before the run folder is touched, so a bad input leaves nothing half-written.
A rerun on the same folder resumes from its newest checkpoint; on the CPU the resumed run is bit-identical to
an uninterrupted one. SIGINT (and SIGTERM, SIGHUP) finishes the current step, saves a checkpoint and returns
``interrupted``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch.nn import functional as F

from ..errors import DownloadError, EsrganVideoError, ModelError, OptionError, OutputError, first_line
from . import ddp
from ._text import brief
from .config import TrainConfig
from .data import PatchSampler, apply_video_degradation, frames_digest, load_sources, validation_crops
from .degradations import RealESRGAN, degradation_dict, degrade_batch, make_degradation, round8, usm_sharp
from .discriminators import check_patch, make_discriminator, paper_init
from ..quality import psnr
from .losses import GAN_LOSSES, l1_loss
from .recipes import RECIPES, Recipe, lr_at
from .run_folder import RunFolder, writing
from .steplog import StepLog

LOG_EVERY = 10
"""Steps between journal writes (``log_every``'s default): one device sync per 10 steps instead of every step."""


@dataclass(frozen=True)
class Plan:
    """The run's settings with every default resolved (what ``config.json`` records)."""

    recipe: Recipe
    degradation: object
    gan: str
    discriminator: str
    pixel_weight: float
    perceptual_weight: float
    gan_weight: float
    perceptual_layers: dict
    patch: int
    batch: int
    steps: int
    schedule: str
    save_every: int
    val_every: int
    preview_every: int
    log_every: int
    val_size: int
    precision: str
    scale: int


@dataclass
class TrainResult:
    """What a run did."""

    out: Path
    step: int
    """The last step done (and checkpointed)."""
    final: Path | None
    best: Path | None
    interrupted: bool = False
    signal: int | None = None
    """The signal that stopped an interrupted run (SIGINT, SIGTERM or SIGHUP)."""
    validation: list[dict] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def resolve_plan(config: TrainConfig, device: torch.device, scale: int) -> Plan:
    """Fill the config's None fields for the recipe and the device; OptionError for combinations that cannot run."""
    recipe = RECIPES[config.recipe]
    cuda = device.type == "cuda"
    patch = config.patch or 128
    if patch % scale:
        raise OptionError("patch", f"a multiple of the scale {scale}", patch)
    deg_name = config.degradation or recipe.degradation
    degradation = make_degradation(deg_name, config.degradation_options)
    disc = config.discriminator or recipe.discriminator
    if config.stage == "gan":
        why = check_patch(disc, patch)
        if why:
            raise OptionError("patch", why, patch)
    if deg_name == "video" and config.lr_data:
        raise OptionError("degradation", "none with paired data (the LR frames are given)", deg_name)
    steps = config.steps or (20000 if cuda else 200)
    every = max(1, min(1000 if cuda else 50, steps // 4 or 1))
    precision = config.precision
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "fp32"
    if precision != "fp32" and not cuda:
        raise OptionError("precision", "fp32 on the CPU (bf16/fp16 autocast is for CUDA)", precision)
    layers = dict(config.perceptual_layers) if config.perceptual_layers else dict(recipe.perceptual_layers)
    return Plan(
        recipe=recipe, degradation=degradation, gan=config.gan or recipe.gan, discriminator=disc,
        pixel_weight=recipe.pixel_weight if config.pixel_weight is None else config.pixel_weight,
        perceptual_weight=recipe.perceptual_weight if config.perceptual_weight is None else config.perceptual_weight,
        gan_weight=recipe.gan_weight if config.gan_weight is None else config.gan_weight,
        perceptual_layers=layers, patch=patch, batch=config.batch or (16 if cuda else 4), steps=steps,
        schedule=config.schedule or recipe.schedule, save_every=config.save_every or every,
        val_every=config.val_every or every, preview_every=config.preview_every or config.val_every or every,
        log_every=config.log_every or LOG_EVERY, val_size=config.val_size or min(2 * patch, 256),
        precision=precision, scale=scale,
    )


def resolved_dict(config: TrainConfig, plan: Plan, base_sha: str, world: int) -> dict:
    """JSON-ready record of the run: the config as given plus every resolved value."""
    out = dataclasses.asdict(config)
    out["betas"] = list(config.betas)
    out.update(
        gan=plan.gan, discriminator=plan.discriminator, degradation=degradation_dict(plan.degradation),
        pixel_weight=plan.pixel_weight, perceptual_weight=plan.perceptual_weight, gan_weight=plan.gan_weight,
        perceptual_layers=plan.perceptual_layers, patch=plan.patch, batch=plan.batch, steps=plan.steps,
        schedule=plan.schedule, milestones=list(plan.recipe.milestones), gamma=plan.recipe.gamma,
        save_every=plan.save_every, val_every=plan.val_every, preview_every=plan.preview_every,
        log_every=plan.log_every, val_size=plan.val_size, precision=plan.precision, scale=plan.scale,
        usm_targets=plan.recipe.usm_targets, pool=plan.recipe.pool, base_sha256=base_sha, world_size=world,
    )
    for k in ("hr_crop", "lr_crop"):
        if out[k] is not None:
            out[k] = list(out[k])
    out["data"], out["lr_data"] = list(config.data), list(config.lr_data)
    for k in ("data", "lr_data", "out", "vgg_weights", "discriminator_weights", "base"):  # files as absolute names,
        v = out[k]  # so a rerun from another folder, or naming them another way, is the same run (a registry name stays)
        if isinstance(v, list):
            out[k] = [os.path.abspath(x) for x in v]
        elif v is not None and (k != "base" or os.path.exists(v)):
            out[k] = os.path.abspath(v)
    out.pop("degradation_options", None)
    return json.loads(json.dumps(out))


class PairPool:
    """Real-ESRGAN's shuffling pool of training pairs: fills with the first batches, then every batch swaps
    places with a random batch-sized part of the pool (``_dequeue_and_enqueue``)."""

    def __init__(self, size: int, batch: int, seed: int) -> None:
        self.size = max(batch, size // batch * batch)
        self.lr: torch.Tensor | None = None
        self.hr: torch.Tensor | None = None
        self.fill = 0
        self.g = torch.Generator().manual_seed(int(seed))

    def swap(self, lr: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = lr.shape[0]
        if self.lr is None:
            self.lr = lr.new_zeros((self.size, *lr.shape[1:]))
            self.hr = hr.new_zeros((self.size, *hr.shape[1:]))
        if self.fill < self.size:
            self.lr[self.fill:self.fill + b] = lr
            self.hr[self.fill:self.fill + b] = hr
            self.fill += b
            return lr, hr
        idx = torch.randperm(self.size, generator=self.g).to(self.lr.device)
        self.lr, self.hr = self.lr[idx], self.hr[idx]
        out_lr, out_hr = self.lr[:b].clone(), self.hr[:b].clone()
        self.lr[:b], self.hr[:b] = lr, hr
        return out_lr, out_hr

    def state(self) -> dict:
        return {"fill": self.fill, "g": self.g.get_state(),
                "lr": None if self.lr is None else self.lr.cpu(), "hr": None if self.hr is None else self.hr.cpu()}

    def load(self, state: dict, device: torch.device) -> None:
        self.fill = int(state["fill"])
        self.g.set_state(state["g"])
        self.lr = None if state["lr"] is None else state["lr"].to(device)
        self.hr = None if state["hr"] is None else state["hr"].to(device)


@contextmanager
def _seeded(seed: int):
    """The global RNG seeded with ``seed`` inside the block, as it was outside it: a model's initial weights
    (made on the CPU) drawn from the run's seed, the same each time one command runs."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


class Trainer:
    """A training run. ``run()`` trains (or resumes) to ``steps`` and returns a :class:`TrainResult`."""

    def __init__(self, config: TrainConfig, *, restart: bool = False, progress: bool | None = None,
                 notice: Callable[[str], None] | None = None) -> None:
        self.config = config
        self.restart = restart
        self.progress = (not config.quiet) if progress is None else progress
        self._notice = notice or (lambda msg: None if config.quiet else print(f"esrgan-video train: {msg}",
                                                                            file=sys.stderr))
        self.notices: list[str] = []
        self._stop = False
        self._ready = False  # setup() done
        self._started = False  # the run folder prepared (by the first run() call)
        self.log = StepLog()
        self._bar = None

    @property
    def started(self) -> bool:
        """Whether the run folder has been prepared (by the first :meth:`run` call): before that, nothing was
        written and a failure or an interrupt leaves no run folder behind."""
        return self._started

    @property
    def stop_requested(self) -> bool:
        """Whether a stop signal (Ctrl-C, SIGTERM, SIGHUP) came during :meth:`run`: the run finishes its step and
        saves a checkpoint; a second signal stops it at once."""
        return self._stop

    def notice(self, msg: str) -> None:
        self.notices.append(msg)
        if self.world.main:
            self._notice(msg)

    # ------------------------------------------------------------------ setup

    def _device(self) -> torch.device:
        from ..runtime.devices import resolve_device

        dev = resolve_device(self.config.device)
        if self.world.distributed and dev.type == "cuda":
            dev = torch.device(f"cuda:{self.world.local_rank}")
        return dev

    def _generator(self, scale_wanted: int | None):
        from ..arch.rrdbnet import RRDBNet, RRDBParams

        cfg = self.config
        if cfg.base:
            from ..models import load_model

            base = load_model(cfg.base, offline=cfg.offline)
            for msg in base.info.notices:  # how the weights were read (e.g. a scale from the file name), told once
                self.notice(msg)
            if not isinstance(base, RRDBNet):
                raise ModelError(f"{cfg.base}: training fine-tunes RRDB (ESRGAN) generators; this model is a "
                                 f"{type(base).__name__}")
            params = base.params
            if scale_wanted is not None and params.scale != scale_wanted:
                raise ModelError(f"{cfg.base}: the base model is x{params.scale}, but --scale {scale_wanted} was asked "
                                 "(fine-tune a base of the scale you want)")
            g = RRDBNet(params, clamp=False)
            g.load_state_dict(base.state_dict())
            return g, base.info.sha256
        from ..models.loading import state_dict_sha256

        params = RRDBParams(nf=cfg.nf, nb=cfg.nb, gc=cfg.gc, scale=scale_wanted or 4)
        with _seeded(cfg.seed):
            g = paper_init(RRDBNet(params, clamp=False))
        return g, "scratch:" + state_dict_sha256(g.state_dict())

    def setup(self) -> None:
        """Everything that can fail on bad input, before the run folder is written."""
        cfg = self.config
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.world = ddp.from_env()
        self.device = self._device()
        self.folder = RunFolder(cfg.out)
        self.folder.check_writable()
        if not self.restart:  # before joining the process group: every rank refuses alone, none waits for others
            self.folder.check_world(self.world.size)
        ddp.init(self.world, self.device)
        self.g, base_sha = self._generator(cfg.scale)
        scale = self.g.params.scale
        self.plan = plan = resolve_plan(cfg, self.device, scale)
        # does the discriminator refuse the next smaller patch? then a smaller --patch alone cannot help
        fixed = cfg.stage == "gan" and check_patch(plan.discriminator, plan.patch - scale) is not None
        self.sources = load_sources(cfg, scale, plan.patch, notice=self.notice, smaller_patch=(
            f"the {plan.discriminator} discriminator takes only {plan.patch}-px patches: use --discriminator unet "
            "and a smaller --patch" if fixed else "use a smaller --patch"))
        digest = frames_digest(self.sources)  # before the video degradation's LR, made from the HR
        if plan.degradation.name == "video":
            apply_video_degradation(self.sources, scale, plan.degradation, cfg.seed)
        self.resolved = resolved_dict(cfg, plan, base_sha, self.world.size)
        self.resolved["data_frames"] = digest
        self.start_step = 0
        self.resume_state = None
        if self.folder.exists() and not self.restart:
            self.folder.check_same(self.resolved)
            last = self.folder.latest_step()
            if last is not None:
                if last > plan.steps:  # the loop would not run and no final model be written, yet exit 0
                    raise OptionError("steps", f"at least {last}, the step of the newest checkpoint in "
                                      f"{self.folder.path}", plan.steps,
                                      detail="more steps train on from it; --restart starts over")
                self.resume_state = self.folder.load_state(last)
                self.start_step = last
        dev = self.device
        if dev.type == "cpu" and not cfg.threads and torch.get_num_threads() > 1 and hasattr(os, "getloadavg"):
            load, cores = os.getloadavg()[0], os.cpu_count() or 1
            if load > 1.25 * cores:
                self.notice(f"the machine is busy (load {load:.1f} on {cores} cores): --threads 1 can be many times "
                            f"faster than {torch.get_num_threads()} threads that keep waiting for each other")
        self.g.to(dev)
        self.base_model = copy.deepcopy(self.g).eval().requires_grad_(False)
        self.ema = copy.deepcopy(self.g).eval().requires_grad_(False) if cfg.ema > 0 else None
        self.sampler = PatchSampler(self.sources, plan.patch, scale, cfg.seed, rotate=plan.recipe.rot_augment)
        self.global_batch = plan.batch * self.world.size
        self.pool = PairPool(plan.degradation.pool_size if isinstance(plan.degradation, RealESRGAN) else 0,
                             plan.batch, cfg.seed + 7919 * (self.world.rank + 1)) if plan.recipe.pool else None
        self.gan_stage = cfg.stage == "gan"
        self.perceptual = None
        need_vgg = self.gan_stage and plan.perceptual_weight > 0
        try:
            from .vgg import PerceptualLoss, load_vgg_weights

            weights = load_vgg_weights(cfg.vgg_weights, offline=cfg.offline)
            self.perceptual = PerceptualLoss(weights, plan.perceptual_layers).to(dev)
            self.vgg_source = weights.source
        except (ModelError, DownloadError) as e:  # fatal only where the loss needs VGG or a file was named
            if need_vgg or cfg.vgg_weights:
                raise
            self.notice(f"validation without the perceptual distance ({e})")
            self.vgg_source = None
        self.d = self._make_discriminator().to(dev) if self.gan_stage else None
        cuda = dev.type == "cuda"
        if cuda:
            torch.backends.cudnn.benchmark = True  # fixed patch shapes: let cuDNN pick its fastest kernels
        if cuda and cfg.channels_last:
            for m in (self.g, self.d, self.ema, self.base_model):
                if m is not None:
                    m.to(memory_format=torch.channels_last)
        self.amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(plan.precision)
        self.opt_g = torch.optim.Adam(self.g.parameters(), lr=cfg.lr, betas=cfg.betas)
        self.opt_d = torch.optim.Adam(self.d.parameters(), lr=cfg.lr, betas=cfg.betas) if self.d is not None else None
        use_scaler = plan.precision == "fp16"
        self.scaler_g = torch.amp.GradScaler("cuda", enabled=use_scaler)
        self.scaler_d = torch.amp.GradScaler("cuda", enabled=use_scaler)
        self.history: list[dict] = []
        self.best: float | None = None
        if self.resume_state is not None:
            self._restore(self.resume_state)
        self.g_train = ddp.wrap(self.g, self.world, dev)
        self.d_train = ddp.wrap(self.d, self.world, dev) if self.d is not None else None
        val_hr, val_lr = validation_crops(self.sources, plan.val_size, cfg.val_crops, scale)
        self.val_hr = val_hr.float() / 255.0
        self._val_features = None
        if val_lr is not None:
            self.val_lr = val_lr.float() / 255.0
        else:
            seeds = torch.arange(self.val_hr.shape[0], dtype=torch.int64) + 10**9 + cfg.seed
            src = usm_sharp(self.val_hr) if isinstance(plan.degradation, RealESRGAN) and plan.recipe.usm_targets \
                else self.val_hr
            self.val_lr = degrade_batch(src, scale, plan.degradation, seeds)
        n = min(4, self.val_hr.shape[0])
        with torch.no_grad():
            self.preview_base = torch.cat([self._infer(self.base_model, self.val_lr[i:i + 1]) for i in range(n)])

    def _make_discriminator(self) -> torch.nn.Module:
        """The plan's discriminator (``discriminator_weights`` loaded), its BatchNorm layers synchronised across
        the processes of a multi-GPU run (:func:`.ddp.sync_batchnorm`). Its initial weights come from ``seed``, as a
        scratch generator's do: one command trains the same discriminator each time it is run (unseeded, a rerun of
        the gan stage drew others, so no two runs, and no resumed run and an uninterrupted one, agreed)."""
        with _seeded(self.config.seed + 1):  # not the generator's draws
            d = make_discriminator(self.plan.discriminator)
        if self.config.discriminator_weights:
            self._load_discriminator(d, self.config.discriminator_weights)
        return ddp.sync_batchnorm(d, self.world, self.device)

    def _load_discriminator(self, d: torch.nn.Module, path: str) -> None:
        from ..models.checkpoints import read_checkpoint

        obj, _ = read_checkpoint(path)
        try:
            d.load_state_dict(obj, strict=True)
        except (RuntimeError, TypeError, AttributeError) as e:
            raise ModelError(f"{path}: not a {self.plan.discriminator} discriminator "
                             f"({first_line(e) or type(e).__name__})") from e

    def _restore(self, st: dict) -> None:
        path = self.folder.state_path(self.start_step)
        try:
            self.g.load_state_dict(st["g"])
            if self.ema is not None:
                self.ema.load_state_dict(st["ema"])
            self.opt_g.load_state_dict(st["opt_g"])
            if self.d is not None:
                self.d.load_state_dict(st["d"])
                self.opt_d.load_state_dict(st["opt_d"])
            self.sampler.load_state(st["sampler"])
            pools = st.get("pool")
            if isinstance(pools, dict):  # saved before the pools of all processes were: rank 0's
                pools = [pools]
            if self.pool is not None and pools is not None:
                self.pool.load(pools[self.world.rank if len(pools) == self.world.size else 0], self.device)
            if st.get("scaler_g"):
                self.scaler_g.load_state_dict(st["scaler_g"])
                self.scaler_d.load_state_dict(st["scaler_d"])
            self.history = list(st.get("history", []))
            if st.get("rng_cpu") is not None:
                torch.set_rng_state(st["rng_cpu"])
            if st.get("rng_cuda") is not None and self.device.type == "cuda":
                torch.cuda.set_rng_state_all(st["rng_cuda"])
            self.best = st.get("best")
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            raise ModelError(f"{path}: corrupt training checkpoint ({brief(e)}); "
                             "use --restart") from e

    # ------------------------------------------------------------------ pieces

    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        t = t.to(self.device, non_blocking=True).float() / 255.0
        if self.device.type == "cuda" and self.config.channels_last:
            t = t.contiguous(memory_format=torch.channels_last)
        return t

    @torch.no_grad()
    def _infer(self, model, lr: torch.Tensor) -> torch.Tensor:
        x = lr.to(self.device)
        return round8(model(x).float()).cpu()

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This process's (LR, HR) training pair for the next step, on the device."""
        plan = self.plan
        hr_u8, lr_u8, seeds = self.sampler.sample(self.global_batch)
        part = slice(self.world.rank * plan.batch, (self.world.rank + 1) * plan.batch)
        hr = self._to_device(hr_u8[part])
        if lr_u8 is not None:
            lr = self._to_device(lr_u8[part])
        else:
            realesrgan = isinstance(plan.degradation, RealESRGAN)
            src = usm_sharp(hr) if realesrgan and plan.recipe.usm_targets else hr
            lr = degrade_batch(src, plan.scale, plan.degradation, seeds[part])
        if self.pool is not None:
            lr, hr = self.pool.swap(lr, hr)
        return lr, hr

    def step(self, index: int) -> dict:
        """One optimisation step (0-based ``index``); returns the journal record, its losses and gradient norm
        as 0-dim tensors on the device (reading them here would make the host wait for the step to finish:
        :class:`~esrgan_video.train.steplog.StepLog` reads them every ``log_every`` steps)."""
        plan, cfg = self.plan, self.config
        lr_now = lr_at(index, base=cfg.lr, total=plan.steps, schedule=plan.schedule,
                       milestones=plan.recipe.milestones, gamma=plan.recipe.gamma)
        for opt in (self.opt_g, self.opt_d):
            if opt is not None:
                for group in opt.param_groups:
                    group["lr"] = lr_now
        lr, hr = self.batch()
        target = usm_sharp(hr) if plan.recipe.usm_targets else hr
        rec: dict = {"step": index + 1, "lr": lr_now}
        self.g_train.train()
        if self.d is not None:
            self.d.requires_grad_(False)
        with self._autocast():
            out = self.g_train(lr)
        out = out.float()
        if not self.gan_stage:
            loss = l1_loss(out, target)
            rec["l_pix"] = loss.detach()
        else:
            d_loss_fn, g_loss_fn = GAN_LOSSES[plan.gan]
            l_pix = plan.pixel_weight * l1_loss(out, target)
            l_per = plan.perceptual_weight * self.perceptual(out, target) if plan.perceptual_weight > 0 \
                else out.new_zeros(())
            with self._autocast():
                fake_g = self.d(out)
                real_g = self.d(hr).detach() if plan.gan == "ragan" else fake_g.detach()
            l_gan = plan.gan_weight * g_loss_fn(real_g.float(), fake_g.float())
            loss = l_pix + l_per + l_gan
            rec.update(l_pix=l_pix.detach(), l_percep=l_per.detach(), l_gan=l_gan.detach())
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(loss).backward()
        self.scaler_g.unscale_(self.opt_g)
        rec["grad_norm"] = torch.nn.utils.clip_grad_norm_(self.g.parameters(), float("inf"))
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        rec["loss"] = loss.detach()
        if self.gan_stage:
            self.d.requires_grad_(True)
            self.d_train.train()
            with self._autocast():
                real_d = self.d_train(hr)
                fake_d = self.d_train(out.detach())
            l_d = d_loss_fn(real_d.float(), fake_d.float())
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler_d.scale(l_d).backward()
            self.scaler_d.step(self.opt_d)
            self.scaler_d.update()
            rec["l_d"] = l_d.detach()
        if self.ema is not None:
            decay = cfg.ema
            with torch.no_grad():
                e = list(self.ema.parameters())
                p = [q.detach() for q in self.g.parameters()]
                torch._foreach_mul_(e, decay)
                torch._foreach_add_(e, p, alpha=1 - decay)
        return rec

    @property
    def eval_model(self):
        return self.ema if self.ema is not None else self.g

    @torch.no_grad()
    def validate(self, step: int) -> dict:
        """Held-out PSNR (dB, mean over the crops) and perceptual distance (VGG-feature L1, the recipe's layers and
        weights, mean over the crops) of the eval model, in fp32."""
        model = self.eval_model
        was = model.training
        model.eval()
        hr = self.val_hr.to(self.device)
        out = torch.cat([round8(model(self.val_lr[i:i + 4].to(self.device)).float())
                         for i in range(0, hr.shape[0], 4)])
        model.train(was)
        ps = [psnr(out[i:i + 1], hr[i:i + 1]) for i in range(hr.shape[0])]
        per = None
        if self.perceptual is not None:
            if self._val_features is None:  # the targets' features, once
                self._val_features = self.perceptual.features(hr)
            fo = self.perceptual.features(out)
            per = sum(w * F.l1_loss(fo[k], self._val_features[k]).item()
                      for k, w in self.perceptual.layer_weights.items())
        finite = [p for p in ps if math.isfinite(p)]
        return {"step": step, "validation": True, "psnr": sum(finite) / max(1, len(finite)), "perceptual": per}

    def _better(self, rec: dict) -> bool:
        key = "perceptual" if self.gan_stage and rec.get("perceptual") is not None else "psnr"
        value = rec[key]
        sign = -1 if key == "perceptual" else 1
        if self.best is None or sign * value > sign * self.best:
            self.best = value
            return True
        return False

    def _metadata(self, step: int) -> dict[str, str]:
        return {"esrgan_video.source": f"esrgan-video train {self.folder.path} step {step}",
                "esrgan_video.notes": json.dumps([f"fine-tuned by esrgan-video train ({self.config.recipe} recipe, "
                                                  f"{self.config.stage} stage, step {step})"])}

    def save_model(self, path: Path, step: int) -> Path:
        from ..models.checkpoints import save_safetensors

        sd = {k: v.detach().float().contiguous() for k, v in self.eval_model.state_dict().items()}
        # the hyperparameters recorded: a fine-tuned old-arch x3 base is saved with new-arch keys, which alone read as x2
        with writing(path):
            return save_safetensors(sd, path, self._metadata(step), params=self.g.params)

    def checkpoint(self, step: int) -> None:
        """Model file, then the state file (which makes the checkpoint count), then prune old ones. Collective:
        every rank calls it (each process's shuffling pool goes into the state), rank 0 writes."""
        pools = None if self.pool is None else ddp.gather(self.world, self.pool.state())
        if not self.world.main:
            return
        from ..models.checkpoints import save_safetensors

        self.save_model(self.folder.model_path(step), step)
        if self.d is not None:
            with writing(self.folder.discriminator_path):
                save_safetensors({k: v.detach().contiguous() for k, v in self.d.state_dict().items()},
                                 self.folder.discriminator_path, {"esrgan_video.discriminator": self.plan.discriminator})
        state = {
            "step": step, "g": self.g.state_dict(), "ema": None if self.ema is None else self.ema.state_dict(),
            "opt_g": self.opt_g.state_dict(), "d": None if self.d is None else self.d.state_dict(),
            "opt_d": None if self.opt_d is None else self.opt_d.state_dict(), "sampler": self.sampler.state(),
            "pool": pools,  # one per process, in rank order
            "world_size": self.world.size,
            "scaler_g": self.scaler_g.state_dict() if self.scaler_g.is_enabled() else None,
            "scaler_d": self.scaler_d.state_dict() if self.scaler_d.is_enabled() else None,
            "history": self.history, "best": self.best,
            # nothing in a step draws from torch's global generators today (the sampler, the degradations and the
            # pool have their own); saved so that anything that does resumes exactly too
            "rng_cpu": torch.get_rng_state(),
            "rng_cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
        }
        self.folder.save_state(step, state)
        self.folder.prune()

    def preview(self, step: int) -> None:
        from .images import preview_grid, write_png

        n = self.preview_base.shape[0]
        cur = torch.cat([self._infer(self.eval_model, self.val_lr[i:i + 1]) for i in range(n)])
        write_png(self.folder.preview_path(step), preview_grid(self.val_lr[:n], self.preview_base, cur, self.val_hr[:n]))

    def curves(self) -> None:
        from .images import curves_image, write_png

        if self.history:
            write_png(self.folder.curves_path, curves_image([h["step"] for h in self.history],
                                                            [h["psnr"] for h in self.history],
                                                            [h["perceptual"] for h in self.history]))

    def _journal(self, *recs: dict) -> None:
        if self.world.main and recs:
            with writing(self.folder.journal_path), open(self.folder.journal_path, "a", encoding="utf-8") as f:
                f.write("".join(json.dumps(rec) + "\n" for rec in recs))

    def _write_log(self) -> None:
        """The journal lines of the steps since the last write (their values reach the host in one copy) and the
        progress bar's loss."""
        recs = self.log.flush()
        self._journal(*recs)
        if recs and self._bar is not None:
            last = recs[-1]
            self._bar.set_postfix(loss=f"{last['loss']:.4g}", patches_s=f"{last['patches_s']:.2f}")

    def _validation(self, step: int) -> None:
        if not self.world.main:
            return
        rec = self.validate(step)
        self.history.append(rec)
        self._journal(rec)
        if self._better(rec):
            self.save_model(self.folder.best_path, step)

    # ------------------------------------------------------------------ the run

    def _on_signal(self, signum, frame) -> None:
        if self._stop:  # a second Ctrl-C (or SIGTERM, SIGHUP): stop now, with that signal's exit status
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            from ..cli.signals import Terminated

            raise Terminated(signum)
        self._stop = True
        self._signal = signum

    def run(self, *, until: int | None = None) -> TrainResult:
        """Train from the last checkpoint (or the start) to ``steps``; checkpoint on SIGINT.

        ``until``: stop after that step with a checkpoint (a planned pause: calling ``run`` again on this object,
        or a rerun of the same command, continues the same run with the same schedule, as if it had not stopped).
        The result then has no ``final``."""
        if not self._ready:
            self.setup()
            self._ready = True
        done = False
        try:
            try:
                result = self._run(until)
            except OSError as e:
                if isinstance(e, EsrganVideoError):
                    raise
                # a write into the run folder failed (full disk, a folder made read-only, ...): one line, exit 6;
                # the checkpoints already written stay (each is written whole or not at all)
                where = e.filename or self.folder.path
                raise OutputError(f"{where}: cannot write the run folder ({e.strerror or brief(e)})") from e
            done = result.interrupted or result.final is not None
            return result
        except BaseException:
            done = True
            raise
        finally:
            if done:
                ddp.shutdown(self.world)

    def _run(self, until: int | None) -> TrainResult:
        plan, folder = self.plan, self.folder
        main = self.world.main
        if main and not self._started:
            self._started = True
            folder.path.mkdir(parents=True, exist_ok=True)
            folder.remove_partials()  # a run killed (SIGKILL, power) while writing left its temporary files
            if self.restart or self.start_step == 0:  # nothing to resume: no leftovers of a run killed early
                folder.clear()
            if self.start_step:
                folder.truncate_journal(self.start_step)
                self.notice(f"resuming {folder.path} from step {self.start_step}")
            folder.write_json(folder.config_path, self.resolved)
        if self.start_step == 0 and not self.history:
            self._validation(0)
            if main:
                self.preview(0)
        handler_set = threading.current_thread() is threading.main_thread()
        stops = [s for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
                 if handler_set and signal.getsignal(s) is not signal.SIG_IGN]  # nohup's SIGHUP stays ignored
        old = {s: signal.signal(s, self._on_signal) for s in stops}
        bar = self._bar = None
        if self.progress and main:
            from tqdm import tqdm

            bar = self._bar = tqdm(total=plan.steps, initial=self.start_step, unit="step", dynamic_ncols=True,
                                   file=sys.stderr, desc="train")
        step = self.start_step
        stop_at = plan.steps if until is None else max(self.start_step, min(until, plan.steps))
        interrupted = False
        t_last = time.perf_counter()
        try:
            while step < stop_at:
                if ddp.any_true(self.world, self._stop):
                    interrupted = True
                    break
                rec = self.step(step)
                step += 1
                now = time.perf_counter()
                rec["it_s"] = 1.0 / max(1e-9, now - t_last)
                rec["patches_s"] = rec["it_s"] * self.global_batch
                t_last = now
                if main:
                    self.log.add(rec)
                if bar is not None:
                    bar.update(1)
                validate = step % plan.val_every == 0 or step == plan.steps
                preview = main and (step % plan.preview_every == 0 or step == plan.steps)
                save = step % plan.save_every == 0 or step == plan.steps or step == stop_at
                if validate or preview or save or step % plan.log_every == 0:
                    self._write_log()
                if validate:
                    self._validation(step)
                if preview:
                    self.preview(step)
                if save:
                    self.checkpoint(step)
            self._write_log()
            if ddp.any_true(self.world, interrupted and main and (folder.latest_step() or 0) < step):
                self.checkpoint(step)
        except BaseException:
            with suppress(Exception):  # the lines of the steps done before the failure, if they can be
                self._write_log()
            raise
        finally:
            if bar is not None:
                bar.close()
                self._bar = None
            if handler_set:
                for s, h in old.items():
                    signal.signal(s, h)
        final = None
        if main:
            self.curves()
            if not interrupted and step == plan.steps:
                final = self.save_model(folder.final_path, step)
        ddp.barrier(self.world)
        self.start_step = step
        return TrainResult(out=folder.path, step=step, final=final,
                           best=folder.best_path if folder.best_path.is_file() else None, interrupted=interrupted,
                           signal=getattr(self, "_signal", signal.SIGINT) if interrupted else None,
                           validation=list(self.history), notices=list(self.notices))


def train(config: TrainConfig | None = None, *, restart: bool = False, progress: bool | None = None,
          notice: Callable[[str], None] | None = None, **options) -> TrainResult:
    """Run (or resume) a training run: ``train(TrainConfig(...))`` or ``train(data=[...], out=..., ...)``."""
    if config is None:
        config = TrainConfig.from_mapping(options, source="train()")
    elif options:
        config = dataclasses.replace(config, **options)
    return Trainer(config, restart=restart, progress=progress, notice=notice).run()


__all__ = ["Plan", "TrainResult", "Trainer", "resolve_plan", "train"]
