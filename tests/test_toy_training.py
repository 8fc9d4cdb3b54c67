"""The toy's training code (lib_lcm.toy.training): the re-creation commands repeat exactly for a seed,
the data is what the docstrings say, and the teacher learns."""

from __future__ import annotations

import torch

from lib_lcm.toy import digits as toy
from lib_lcm.toy import training


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_the_digits_are_sklearns_upsampled():
    images, labels = toy.real_digits()
    assert images.shape == (1797, 1, 32, 32) and labels.shape == (1797,)
    assert images.min() == -1 and images.max() == 1
    assert torch.bincount(labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_augmentation_moves_digits_a_little_and_repeats_for_a_seed():
    images, _ = toy.real_digits()
    first = toy.augment(images[:64], torch.Generator().manual_seed(3))
    again = toy.augment(images[:64], torch.Generator().manual_seed(3))
    assert torch.equal(first, again)
    change = (first - images[:64]).abs().mean()
    assert 0.01 < change < 0.3


def test_training_repeats_exactly_for_a_seed():
    images, labels = toy.real_digits()
    quiet = lambda _: None  # noqa: E731
    assert _same(training.train_autoencoder(images[:256], steps=3, echo=quiet),
                 training.train_autoencoder(images[:256], steps=3, echo=quiet))
    first, accuracy = training.train_classifier(images[:256], labels[:256], steps=3, echo=quiet)
    assert _same(first, training.train_classifier(images[:256], labels[:256], steps=3, echo=quiet)[0])
    assert 0 <= accuracy <= 1
    latents, latent_labels = torch.randn(64, 4, 8, 8), torch.arange(64) % 10
    recipe = training.TeacherRecipe(steps=2, batch=8)
    a = training.train_teacher(latents, latent_labels, recipe, echo=quiet)
    b = training.train_teacher(latents, latent_labels, recipe, echo=quiet)
    assert _same(a.unet, b.unet) and _same(a.labels, b.labels)


def test_the_teacher_learns_to_predict_noise():
    """A few dozen steps on 32 latents lower the epsilon loss on fixed draws."""
    generator = torch.Generator().manual_seed(0)
    latents, labels = torch.randn(32, 4, 8, 8, generator=generator), torch.arange(32) % 10
    alphas = training.NoiseSchedule.scaled_linear().alphas_cumprod
    t = torch.randint(0, 1000, (32,), generator=generator)
    noise = torch.randn(latents.shape, generator=generator)
    a = alphas[t].view(-1, 1, 1, 1)
    noisy = a.sqrt() * latents + (1 - a).sqrt() * noise

    def loss(teacher: toy.Teacher) -> float:
        with torch.no_grad():
            prediction = teacher.unet(noisy, t, encoder_hidden_states=teacher.labels(labels)).sample
        return float((prediction - noise).pow(2).mean())

    untrained = loss(toy.new_teacher(0))
    trained = training.train_teacher(latents, labels, training.TeacherRecipe(steps=40, batch=32, warmup=5,
                                                                              ema_decay=0.0), echo=lambda _: None)
    assert loss(trained) < 0.8 * untrained, (untrained, loss(trained))


def test_saved_teacher_round_trips_in_float16(tmp_path):
    teacher = toy.new_teacher(1)
    toy.save_teacher(teacher, tmp_path / "t.safetensors")
    loaded = toy.load_teacher(tmp_path / "t.safetensors")
    for (name, original), restored in zip(teacher.unet.state_dict().items(), loaded.unet.state_dict().values(),
                                          strict=True):
        assert torch.equal(original.half().float(), restored), name
    assert dict(loaded.unet.config) == dict(teacher.unet.config)
