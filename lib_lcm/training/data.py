"""Training data for distilling a real checkpoint: captioned images, each process reading its own share.

Three sources, each a list of (image, caption) samples read one at a time, so nothing needs to fit in
memory:

- a folder of images, each with an optional caption in a same-named ``.txt`` (:class:`ImageFolder`);
- webdataset tar shards: members ``KEY.png|jpg|jpeg|webp`` with ``KEY.txt`` (:class:`TarShards`);
- a Hugging Face ``datasets`` dataset, saved on disk or named on the hub, with an image column and a
  caption column (:class:`HubDataset`).

Process ``rank`` of ``world`` trains on the samples ``rank, rank + world, …`` (:class:`Share`), in an
order shuffled anew each pass from the seed. The position in that order follows from the step count,
so a resumed run carries on where it stopped. Each sample is encoded as the pipelines encode
(:class:`Encoder`: the VAE in float32, the captions by the text encoders, the empty prompt as the
unconditional side) once into memory, every time it is drawn (``keep="none"``), or once into a cache
folder that later runs read (``keep="disk"``).
"""

from __future__ import annotations

import glob
import json
import os
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import torch

from lib_lcm.rules.architecture import Architecture
from lib_lcm.training.distill import Batch, DistillError, LatentBatch

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
Keep = Literal["memory", "none", "disk"]


class Samples(Protocol):
    def __len__(self) -> int: ...

    def load(self, index: int) -> tuple[Any, str]:
        """The sample's image (PIL, RGB) and caption."""
        ...

    def describe(self) -> str:
        """What the samples are, for messages and the cache's manifest."""
        ...


# ---------------------------------------------------------------- sources

class ImageFolder:
    def __init__(self, folder: Path) -> None:
        if not folder.is_dir():
            raise DistillError(f"{folder} is not a folder; give --images a folder of training images.")
        self.images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.images:
            raise DistillError(f"{folder} holds no images ({', '.join(IMAGE_SUFFIXES)}); put training images "
                               "there, each with an optional caption in a .txt file of the same name.")
        self.folder = folder

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int) -> tuple[Any, str]:
        path = self.images[index]
        caption = path.with_suffix(".txt")
        with path.open("rb") as handle:
            image = _image(handle, path.name)
        return image, caption.read_text(encoding="utf-8").strip() if caption.is_file() else ""

    def describe(self) -> str:
        return f"folder {self.folder.resolve()} ({len(self)} images)"


@dataclass(frozen=True)
class _Member:
    shard: Path
    image: str
    caption: str | None


class TarShards:
    """webdataset's layout: in each tar, the files of one sample share a key (the name before the first dot)."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.shards = sorted({Path(p) for pattern in patterns for p in glob.glob(os.path.expanduser(pattern))})
        if not self.shards:
            raise DistillError(f"--shards {' '.join(patterns)} matches no file; give tar files (or a pattern such "
                               "as 'data/shard-*.tar').")
        self.members = [m for shard in self.shards for m in _members(shard)]
        if not self.members:
            raise DistillError(f"{len(self.shards)} shard(s) hold no images ({', '.join(IMAGE_SUFFIXES)}).")

    def __len__(self) -> int:
        return len(self.members)

    def load(self, index: int) -> tuple[Any, str]:
        member = self.members[index]
        with tarfile.open(member.shard) as tar:
            image = _image(_extract(tar, member.image), f"{member.shard.name}:{member.image}")
            caption = _extract(tar, member.caption).read().decode("utf-8").strip() if member.caption else ""
        return image, caption

    def describe(self) -> str:
        return f"shards {', '.join(str(s.resolve()) for s in self.shards)} ({len(self)} samples)"


def _members(shard: Path) -> list[_Member]:
    try:
        with tarfile.open(shard) as tar:
            names = [m.name for m in tar.getmembers() if m.isfile()]
    except (OSError, tarfile.TarError) as error:
        raise DistillError(f"{shard} is not a readable tar shard ({error}).") from None
    by_key: dict[str, dict[str, str]] = {}
    for name in names:
        key, dot, extension = name.partition(".")
        if dot:
            by_key.setdefault(key, {})[f".{extension.lower()}"] = name
    samples = []
    for key in sorted(by_key):
        files = by_key[key]
        image = next((files[s] for s in IMAGE_SUFFIXES if s in files), None)
        if image is not None:
            samples.append(_Member(shard, image, files.get(".txt")))
    return samples


def _extract(tar: tarfile.TarFile, name: str) -> Any:
    handle = tar.extractfile(name)
    if handle is None:
        raise DistillError(f"{name} in {tar.name!r} is not a regular file.")
    return handle


class HubDataset:
    """A ``datasets`` dataset: a folder saved with ``save_to_disk``, or a name ``load_dataset`` knows."""

    def __init__(self, name: str, split: str = "train", image_column: str = "image",
                 caption_column: str = "text") -> None:
        try:
            import datasets
        except ImportError as error:
            raise DistillError(f"--dataset needs the datasets package ({error}): pip install datasets.") from None
        path = Path(name).expanduser()
        try:
            loaded = datasets.load_from_disk(str(path)) if path.is_dir() else datasets.load_dataset(name, split=split)
        except (OSError, ValueError, FileNotFoundError) as error:
            raise DistillError(f"--dataset {name}: cannot be loaded ({str(error).splitlines()[0][:200]}).") from None
        if isinstance(loaded, datasets.DatasetDict):
            if split not in loaded:
                raise DistillError(f"--dataset {name} has no split {split!r}; it has {', '.join(loaded)}.")
            loaded = loaded[split]
        for column, flag in ((image_column, "--image-column"), (caption_column, "--caption-column")):
            if column not in loaded.column_names:
                raise DistillError(f"--dataset {name} has no column {column!r} (columns: "
                                   f"{', '.join(loaded.column_names)}); name it with {flag}.")
        self.dataset, self.name, self.split = loaded, name, split
        self.image_column, self.caption_column = image_column, caption_column

    def __len__(self) -> int:
        return len(self.dataset)

    def load(self, index: int) -> tuple[Any, str]:
        row = self.dataset[index]
        image = row[self.image_column]
        if not hasattr(image, "convert"):
            raise DistillError(f"--dataset {self.name}: column {self.image_column!r} holds no images.")
        return image.convert("RGB"), str(row[self.caption_column] or "").strip()

    def describe(self) -> str:
        return f"dataset {self.name} [{self.split}] ({len(self)} rows)"


def open_samples(images: Path | None = None, shards: Sequence[str] = (), dataset: str | None = None,
                 split: str = "train", image_column: str = "image", caption_column: str = "text") -> Samples:
    given = [flag for flag, value in (("--images", images), ("--shards", shards), ("--dataset", dataset)) if value]
    if len(given) != 1:
        raise DistillError("--checkpoint needs training data: --images, --shards or --dataset"
                           + (f" (one of them, not {' and '.join(given)})." if given else "."))
    if images is not None:
        return ImageFolder(images)
    if shards:
        return TarShards(shards)
    assert dataset is not None
    return HubDataset(dataset, split, image_column, caption_column)


def _image(handle: Any, name: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(handle) as opened:
            return opened.convert("RGB")
    except (OSError, UnidentifiedImageError) as error:
        raise DistillError(f"{name} is not a readable image ({error}); remove it or replace it.") from None


# ---------------------------------------------------------------- this process's share

@dataclass(frozen=True)
class Share:
    """The samples process ``rank`` of ``world`` reads: every world-th one, shuffled anew each pass."""

    count: int
    rank: int = 0
    world: int = 1
    seed: int = 0

    @property
    def mine(self) -> list[int]:
        return list(range(self.rank, self.count, self.world))

    def indices(self, position: int, n: int) -> list[int]:
        """The ``n`` sample indices from ``position`` on (positions count this process's reads)."""
        mine = self.mine
        if not mine:
            raise DistillError(f"{self.count} samples cannot feed {self.world} processes; give at least "
                               f"{self.world} samples.")
        picked = []
        for at in range(position, position + n):
            epoch, within = divmod(at, len(mine))
            picked.append(mine[int(self._order(epoch)[within])])
        return picked

    def _order(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.mine), generator=generator)


# ---------------------------------------------------------------- encoding

class Encoder:
    """Samples to the distillation's inputs, as the pipelines encode them, on the teacher's device."""

    def __init__(self, pipe: Any, size: int, architecture: Architecture) -> None:
        self.pipe, self.size, self.architecture = pipe, size, architecture
        self.device = pipe.unet.device
        self._empty: dict[str, Any] | None = None

    @torch.no_grad()
    def encode(self, pairs: Sequence[tuple[Any, str]]) -> dict[str, torch.Tensor]:
        """One sample's tensors per row: latents (the VAE's mean times its scaling factor) and the caption's."""
        latents = self._latents([image for image, _ in pairs])
        return {"latents": latents, **self._text([caption for _, caption in pairs])}

    def batch(self, encoded: dict[str, torch.Tensor]) -> LatentBatch:
        """Encoded rows as a training batch, with the empty prompt as the unconditional side."""
        empty = self._empty_prompt()
        n = encoded["latents"].shape[0]
        latents = encoded["latents"].to(self.device, self.pipe.unet.dtype)
        cond = encoded["cond"].to(self.device)
        uncond = empty["cond"].expand(n, *empty["cond"].shape[1:])
        if self.architecture is Architecture.SD1:
            return LatentBatch(latents, cond, uncond)
        time_ids = self._time_ids(n, cond.dtype)
        return LatentBatch(latents, cond, uncond, {"text_embeds": encoded["pooled"].to(self.device),
                                                   "time_ids": time_ids},
                           {"text_embeds": empty["pooled"].expand(n, -1), "time_ids": time_ids})

    def _latents(self, images: Sequence[Any]) -> torch.Tensor:
        from PIL import Image

        vae = self.pipe.vae
        dtype = vae.dtype
        pixels = []
        for image in images:  # centre crop to a square, then resize: the training resolution
            side = min(image.size)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            square = image.crop((left, top, left + side, top + side)).resize((self.size, self.size),
                                                                             Image.Resampling.BICUBIC)
            array = torch.frombuffer(bytearray(square.tobytes()), dtype=torch.uint8).reshape(self.size, self.size, 3)
            pixels.append(array.permute(2, 0, 1).float() / 127.5 - 1)
        vae.to(torch.float32)  # SDXL's VAE overflows in float16
        try:
            encoded = vae.encode(torch.stack(pixels).to(self.device)).latent_dist.mean
        finally:
            vae.to(dtype)
        return (encoded * vae.config.scaling_factor).cpu()

    def _text(self, captions: Sequence[str]) -> dict[str, torch.Tensor]:
        if self.architecture is Architecture.SD1:
            cond, _ = self.pipe.encode_prompt(list(captions), self.device, 1, False, negative_prompt=None)
            return {"cond": cond.cpu()}
        cond, _, pooled, _ = self.pipe.encode_prompt(prompt=list(captions), device=self.device,
                                                     num_images_per_prompt=1, do_classifier_free_guidance=False)
        return {"cond": cond.cpu(), "pooled": pooled.cpu()}

    def _empty_prompt(self) -> dict[str, Any]:
        """The pipelines' unconditional side (SDXL zeroes it where its config says force_zeros_for_empty_prompt)."""
        if self._empty is None:
            with torch.no_grad():
                if self.architecture is Architecture.SD1:
                    _, uncond = self.pipe.encode_prompt([""], self.device, 1, True, negative_prompt=None)
                    self._empty = {"cond": uncond}
                else:
                    _, uncond, _, pooled = self.pipe.encode_prompt(prompt=[""], device=self.device,
                                                                   num_images_per_prompt=1,
                                                                   do_classifier_free_guidance=True)
                    self._empty = {"cond": uncond, "pooled": pooled}
        return self._empty

    def _time_ids(self, n: int, dtype: torch.dtype) -> torch.Tensor:
        # SDXL's size conditioning: original size, crop offset, target size (all the training resolution)
        size = self.size
        return torch.tensor([[size, size, 0, 0, size, size]], device=self.device, dtype=dtype).repeat(n, 1)


# ---------------------------------------------------------------- the feed

class EncodedFeed:
    """This process's micro-batches from its share of the samples, encoded and kept as ``keep`` says."""

    def __init__(self, samples: Samples, encoder: Encoder, share: Share, keep: Keep = "memory",
                 cache: Path | None = None, position: int = 0) -> None:
        if keep == "disk" and cache is None:
            raise DistillError("keeping encoded samples on disk needs a cache folder (--cache DIR).")
        self.samples, self.encoder, self.share, self.keep = samples, encoder, share, keep
        self.cache, self.position = cache, position
        self._memory: dict[int, dict[str, torch.Tensor]] = {}
        if cache is not None:
            _claim_cache(cache, samples, encoder)

    def take(self, batch: int, generator: torch.Generator, shares: Sequence[slice]) -> list[Batch]:
        taken: list[Batch] = []
        for rows in shares:
            n = len(range(*rows.indices(batch)))
            indices = self.share.indices(self.position, n)
            self.position += n
            taken.append(self.encoder.batch(self._encoded(indices)))
        return taken

    def _encoded(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        known = {i: self._known(i) for i in indices}
        missing = [i for i, value in known.items() if value is None]
        if missing:
            fresh = self.encoder.encode([self.samples.load(i) for i in missing])
            for row, index in enumerate(missing):
                encoded = {k: v[row:row + 1] for k, v in fresh.items()}
                known[index] = encoded
                self._remember(index, encoded)
        rows = [known[i] for i in indices]
        return {key: torch.cat([row[key] for row in rows if row is not None]) for key in rows[0] or {}}

    def _known(self, index: int) -> dict[str, torch.Tensor] | None:
        if index in self._memory:
            return self._memory[index]
        if self.keep == "disk" and self.cache is not None and _cached(self.cache, index).is_file():
            from safetensors.torch import load_file

            return load_file(str(_cached(self.cache, index)))
        return None

    def _remember(self, index: int, encoded: dict[str, torch.Tensor]) -> None:
        if self.keep == "memory":
            self._memory[index] = encoded
        elif self.keep == "disk" and self.cache is not None:
            from safetensors.torch import save_file

            path = _cached(self.cache, index)
            partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
            save_file({k: v.contiguous() for k, v in encoded.items()}, str(partial))
            partial.replace(path)


def _cached(cache: Path, index: int) -> Path:
    return cache / f"{index:08d}.safetensors"


def _claim_cache(cache: Path, samples: Samples, encoder: Encoder) -> None:
    """A cache folder serves one source at one size for one checkpoint: its manifest says which."""
    manifest = {"samples": samples.describe(), "size": encoder.size, "architecture": encoder.architecture.value,
                "checkpoint": getattr(encoder.pipe, "name_or_path", "") or ""}
    path = cache / "manifest.json"
    cache.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        found = json.loads(path.read_text(encoding="utf-8"))
        if found != manifest:
            raise DistillError(f"{cache} caches {found.get('samples')} at {found.get('size')} px for "
                               f"{found.get('checkpoint') or 'another checkpoint'}; this run is {manifest['samples']} "
                               f"at {manifest['size']} px. Use another --cache folder.")
        return
    partial = path.with_name(f"manifest.{os.getpid()}.partial")
    partial.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    partial.replace(path)
