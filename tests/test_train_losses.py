"""RaGAN and vanilla GAN losses against the formulas written out by hand (BasicSR's ESRGANModel scaling and
gradient flow), the recipes' learning-rate schedules, and the paper's initialisation."""

from __future__ import annotations

import math

import pytest
import torch

from esrgan_video.train.losses import (GAN_LOSSES, l1_loss, ragan_d_loss, ragan_g_loss, vanilla_d_loss,
                                       vanilla_g_loss)

REAL = [2.0, -0.5, 1.25, 0.3]
FAKE = [-1.0, 0.7, -2.2, 0.1]


def softplus(x: float) -> float:
    return math.log1p(math.exp(-abs(x))) + max(x, 0.0)


def bce(logit: float, real: bool) -> float:
    """-log σ(x) for a real target, -log(1 − σ(x)) for a fake one."""
    return softplus(-logit) if real else softplus(logit)


def mean(xs):
    return sum(xs) / len(xs)


def hand_ragan_d(real, fake):
    mr, mf = mean(real), mean(fake)
    return 0.5 * mean([bce(r - mf, True) for r in real]) + 0.5 * mean([bce(f - mr, False) for f in fake])


def hand_ragan_g(real, fake):
    mr, mf = mean(real), mean(fake)
    return 0.5 * (mean([bce(r - mf, False) for r in real]) + mean([bce(f - mr, True) for f in fake]))


def test_ragan_values_match_the_formulas():
    r, f = torch.tensor(REAL, dtype=torch.float64), torch.tensor(FAKE, dtype=torch.float64)
    assert ragan_d_loss(r, f).item() == pytest.approx(hand_ragan_d(REAL, FAKE), rel=1e-6)
    assert ragan_g_loss(r, f).item() == pytest.approx(hand_ragan_g(REAL, FAKE), rel=1e-6)


def test_generator_and_discriminator_losses_differ():
    r, f = torch.tensor(REAL), torch.tensor(FAKE)
    assert abs(ragan_d_loss(r, f).item() - ragan_g_loss(r, f).item()) > 0.1
    # the generator's loss is the discriminator's with the labels swapped, not the same function
    assert ragan_g_loss(r, f).item() == pytest.approx(ragan_d_loss(f, r).item(), rel=1e-5)


def test_ragan_d_gradients_detach_the_opposite_mean():
    r = torch.tensor(REAL, dtype=torch.float64, requires_grad=True)
    f = torch.tensor(FAKE, dtype=torch.float64, requires_grad=True)
    ragan_d_loss(r, f).backward()
    n = len(REAL)
    mr, mf = mean(REAL), mean(FAKE)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    # d/dr_i of 0.5·mean(-log σ(r_i − mf)) with mf constant = 0.5·(σ(r_i − mf) − 1)/n
    want_r = [0.5 * (sig(x - mf) - 1) / n for x in REAL]
    want_f = [0.5 * sig(x - mr) / n for x in FAKE]
    assert r.grad.tolist() == pytest.approx(want_r, rel=1e-6)
    assert f.grad.tolist() == pytest.approx(want_f, rel=1e-6)


def test_ragan_g_gradient_reaches_fake_through_both_terms_and_not_real():
    r = torch.tensor(REAL, dtype=torch.float64, requires_grad=True)
    f = torch.tensor(FAKE, dtype=torch.float64, requires_grad=True)
    ragan_g_loss(r, f).backward()
    assert r.grad is None or torch.count_nonzero(r.grad) == 0
    n = len(REAL)
    mr, mf = mean(REAL), mean(FAKE)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    # term 1: 0.5·mean(softplus(r_j − mf)); ∂/∂f_i = −0.5·mean_j σ(r_j − mf)/n
    t1 = -0.5 * mean([sig(x - mf) for x in REAL]) / n
    want = [t1 + 0.5 * (sig(x - mr) - 1) / n for x in FAKE]
    assert f.grad.tolist() == pytest.approx(want, rel=1e-6)


def test_vanilla_losses_sum_the_discriminator_terms():
    r, f = torch.tensor(REAL, dtype=torch.float64), torch.tensor(FAKE, dtype=torch.float64)
    want_d = mean([bce(x, True) for x in REAL]) + mean([bce(x, False) for x in FAKE])
    assert vanilla_d_loss(r, f).item() == pytest.approx(want_d, rel=1e-6)
    assert vanilla_g_loss(r, f).item() == pytest.approx(mean([bce(x, True) for x in FAKE]), rel=1e-6)
    assert set(GAN_LOSSES) == {"ragan", "vanilla"}


def test_per_pixel_logits_work_like_flat_ones():
    r = torch.tensor(REAL).view(1, 1, 2, 2)
    f = torch.tensor(FAKE).view(1, 1, 2, 2)
    assert ragan_d_loss(r, f).item() == pytest.approx(hand_ragan_d(REAL, FAKE), rel=1e-5)


def test_l1():
    a = torch.zeros(1, 3, 4, 4)
    b = torch.full((1, 3, 4, 4), 0.1)
    assert l1_loss(a, b).item() == pytest.approx(0.1)


def test_schedules():
    from esrgan_video.train.recipes import RECIPES, lr_at

    e = RECIPES["esrgan"]
    kw = dict(base=1e-4, total=400000, schedule="step", milestones=e.milestones, gamma=e.gamma)
    # the paper's halvings at 50k, 100k, 200k, 300k of 400k
    assert [lr_at(s, **kw) for s in (0, 49999, 50000, 100000, 200000, 300000)] == pytest.approx(
        [1e-4, 1e-4, 5e-5, 2.5e-5, 1.25e-5, 6.25e-6])
    assert lr_at(10, base=1e-4, total=100, schedule="constant", milestones=(), gamma=0.5) == 1e-4
    cos = [lr_at(s, base=1e-4, total=100, schedule="cosine", milestones=(), gamma=0.5) for s in (0, 50, 100)]
    assert cos[0] == pytest.approx(1e-4) and cos[1] == pytest.approx(0.5e-4, rel=1e-2) and cos[2] < 1e-6


def test_recipes_carry_the_published_settings():
    from esrgan_video.train.recipes import RECIPES

    e, r = RECIPES["esrgan"], RECIPES["realesrgan"]
    assert (e.gan, e.discriminator, e.degradation, e.pixel_weight, e.gan_weight) == ("ragan", "vgg128", "bicubic",
                                                                                     1e-2, 5e-3)
    assert dict(e.perceptual_layers) == {"conv5_4": 1.0}
    assert (r.gan, r.discriminator, r.degradation, r.pixel_weight, r.gan_weight, r.usm_targets, r.pool) == (
        "vanilla", "unet", "realesrgan", 1.0, 0.1, True, True)
    assert dict(r.perceptual_layers) == {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0}


def test_paper_init_scales_the_dense_blocks():
    from esrgan_video.arch.rrdbnet import RRDBNet
    from esrgan_video.train.discriminators import paper_init

    torch.manual_seed(0)
    m = RRDBNet(nf=32, nb=2, gc=16, scale=4, clamp=False)
    first = m.conv_first.weight.clone()
    paper_init(m)
    w = m.body[0].rdb1.conv1.weight
    fan_in = w.shape[1] * 9
    # Kaiming-normal (gain √2) × 0.1
    assert w.std().item() == pytest.approx(0.1 * math.sqrt(2 / fan_in), rel=0.1)
    assert torch.count_nonzero(m.body[1].rdb3.conv5.bias) == 0
    assert torch.equal(m.conv_first.weight, first)  # outside the dense blocks: untouched


def test_discriminator_shapes_and_patch_rules():
    from esrgan_video.train.discriminators import check_patch, make_discriminator

    torch.manual_seed(0)
    assert make_discriminator("vgg128")(torch.rand(2, 3, 128, 128)).shape == (2, 1)
    assert make_discriminator("unet")(torch.rand(1, 3, 48, 48)).shape == (1, 1, 48, 48)
    with pytest.raises(ValueError, match="128x128"):
        make_discriminator("vgg128")(torch.rand(1, 3, 96, 96))
    assert check_patch("vgg128", 96) and check_patch("vgg128", 128) is None
    assert check_patch("unet", 100) and check_patch("unet", 96) is None
