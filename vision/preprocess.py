"""Screenshot -> the two pixel tensors CogAgent reads, exactly as the official pipeline makes them.

The official code (``build_conversation_input_ids`` in THUDM/cogagent-chat-hf, with the image opened as
``Image.open(path).convert('RGB')`` by its demos) applies, to the same RGB image, twice:
``torchvision.transforms.Resize((s, s), BICUBIC)`` -> ``ToTensor()`` -> ``Normalize(CLIP mean, CLIP std)``,
with ``s = 224`` for the low-resolution EVA2-CLIP-E branch (``images``) and ``s = 1120`` for the
high-resolution EVA2-CLIP-L branch (``cross_images``). torchvision is not used here (it does not install beside
this torch); the same operations are written out:

* **Resize.** For a PIL image, torchvision's ``Resize`` calls ``img.resize((w, h), Image.BICUBIC)`` and nothing
  else: its ``antialias`` flag only concerns tensors (PIL always filters over the whole footprint when it
  shrinks), and it passes no ``reducing_gap`` (so no ``Image.reduce`` pre-step, unlike ``Image.thumbnail``).
  We call ``Image.resize`` the same way, one axis at a time to keep the pass order of the Pillow the official
  code ran on (see :func:`resize_square`). **The resize squashes the aspect ratio**: a 1920x1080 screenshot
  becomes a 1120x1120 square, so every coordinate the model writes (``[[x1,y1,x2,y2]]`` in 0-999) is relative
  to that squashed square -- i.e. it is a fraction of the original width for x and of the original height for
  y, and maps back to pixels per axis (``vision.geometry``), never with one common scale.
* **ToTensor.** uint8 HWC -> float32 CHW, divided by 255 (float32, the default dtype, as torchvision does).
* **Normalize.** ``(x - mean) / std`` per channel, in float32, with the CLIP constants below.

The result is computed in float32 and only then cast to the requested ``dtype`` (the official demos also
cast the float32 transform output to bf16/fp16), so a bf16 run sees the same rounding as the reference.

**Colour modes.** The official pipeline calls ``.convert('RGB')``; so do we, for every mode PIL converts:
RGBA/LA/PA lose their alpha channel *without* compositing (a fully transparent pixel shows whatever colour it
stores, often black), palette images use their palette, CMYK/YCbCr use PIL's conversion. Two modes where
``convert('RGB')`` would destroy the picture are handled first: 16-bit greyscale (``I;16*``, and ``I``
holding values above 255) is scaled to 8 bits (``round(v / 257)``) instead of being clipped to white. An
animated image contributes the frame it is currently on (frame 0 for a path). EXIF orientation is not applied
(the official code does not apply it either; screenshots carry none).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

#: OpenAI CLIP normalization constants, as the official transforms use them.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

#: cogagent-chat-hf sizes: low-res EVA2-CLIP-E input and high-res EVA2-CLIP-L input.
DEFAULT_IMAGE_SIZE = 224
DEFAULT_CROSS_IMAGE_SIZE = 1120

ImageInput = Union[Image.Image, str, os.PathLike]

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


def _check_size(name: str, size: object) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or int(size) <= 0:
        raise ValueError(f"{name} must be a positive integer (pixels of the square side), got {size!r}")
    return int(size)


def _to_rgb(image: Image.Image) -> Image.Image:
    """The official ``.convert('RGB')``, except for 16-bit greyscale which it would clip to white."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in _SIXTEEN_BIT_MODES or mode == "I":
        values = np.asarray(image).astype(np.int64)
        if mode in _SIXTEEN_BIT_MODES or values.size == 0 or values.max() > 255 or values.min() < 0:
            values = np.clip(values, 0, 65535)
            values = np.rint(values / 257.0)
        return Image.fromarray(values.astype(np.uint8), mode="L").convert("RGB")
    if mode == "La":  # premultiplied LA: PIL only converts it to LA
        image = image.convert("LA")
    try:
        return image.convert("RGB")
    except (ValueError, OSError) as exc:
        raise ValueError(f"cannot convert a {mode!r} image to RGB: {exc}") from exc


def load_rgb(image: ImageInput) -> Image.Image:
    """A PIL image or an image file path -> an RGB PIL image (see the module docstring for colour modes).

    Raises ``TypeError`` for anything that is neither, ``FileNotFoundError`` for a missing path,
    ``ValueError`` for a file that is not a readable image and for an image with a zero width or height.
    """
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.exists():
            raise FileNotFoundError(f"image file {str(path)!r} does not exist")
        if path.is_dir():
            raise ValueError(f"image path {str(path)!r} is a directory, not an image file")
        try:
            with Image.open(path) as opened:
                opened.load()
                _check_not_empty(opened, str(path))
                return _to_rgb(opened).copy()
        except UnidentifiedImageError as exc:
            raise ValueError(f"{str(path)!r} is not an image file PIL can read: {exc}") from exc
        except Image.DecompressionBombError as exc:
            raise ValueError(f"{str(path)!r} is too large to decode safely: {exc}") from exc
        except OSError as exc:  # truncated or corrupt data
            raise ValueError(f"{str(path)!r} could not be decoded as an image: {exc}") from exc
    if not isinstance(image, Image.Image):
        raise TypeError(
            f"expected a PIL.Image.Image or a path to an image file, got {type(image).__name__}")
    _check_not_empty(image, "image")
    return _to_rgb(image)


def _check_not_empty(image: Image.Image, what: str) -> None:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise ValueError(f"{what} has zero size ({width}x{height} pixels); a screenshot needs pixels")


def resize_square(image: Image.Image, size: int) -> Image.Image:
    """PIL bicubic resize to ``size x size`` exactly as torchvision's ``Resize((size, size), BICUBIC)``.

    Squashes the aspect ratio (see the module docstring: model coordinates are per-axis fractions).

    Done as two single-axis resizes, width first, then height. That is exactly what one
    ``Image.resize((size, size), BICUBIC)`` computes in the Pillow releases the official code ran on (their
    resampler always runs the horizontal pass first into an 8-bit intermediate, then the vertical pass).
    Newer Pillow (13 here) may run the vertical pass first for some aspect ratios -- e.g. a portrait phone
    screenshot -- which changes pixels by a few levels where the bicubic overshoot is clipped in between;
    splitting the passes pins the official order whatever Pillow is installed.
    """
    size = _check_size("size", size)
    width, height = image.size
    bicubic = Image.Resampling.BICUBIC
    wide = image.resize((size, height), bicubic, reducing_gap=None)  # horizontal pass (a copy if width == size)
    return wide.resize((size, size), bicubic, reducing_gap=None)  # vertical pass (a copy if height == size)


def to_normalized_tensor(
    rgb: Image.Image,
    size: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: Optional[Union[str, torch.device]] = None,
) -> torch.Tensor:
    """One RGB image -> a [3, size, size] tensor: resize, /255, CLIP-normalize (float32), then cast."""
    if rgb.mode != "RGB":
        raise ValueError(f"to_normalized_tensor needs an RGB image, got mode {rgb.mode!r}; use load_rgb first")
    resized = resize_square(rgb, size)
    pixels = np.asarray(resized, dtype=np.uint8).reshape(resized.height, resized.width, 3)
    tensor = torch.from_numpy(pixels.copy()).permute(2, 0, 1).contiguous().to(torch.float32).div(255)
    mean = torch.tensor(CLIP_MEAN, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=torch.float32).view(3, 1, 1)
    tensor = tensor.sub(mean).div(std)
    return tensor.to(device=device, dtype=dtype)


def preprocess(
    images: Union[ImageInput, Sequence[ImageInput]],
    image_size: int = DEFAULT_IMAGE_SIZE,
    cross_image_size: Optional[int] = DEFAULT_CROSS_IMAGE_SIZE,
    *,
    dtype: torch.dtype = torch.float32,
    device: Optional[Union[str, torch.device]] = None,
) -> Dict[str, torch.Tensor]:
    """One image or a list -> ``{"images": [B,3,s,s], "cross_images": [B,3,S,S]}``.

    ``cross_image_size=None`` leaves out ``cross_images`` (CogVLM has no high-resolution branch). Both
    tensors come from the same RGB image, resized independently from the original (not one from the other).
    """
    image_size = _check_size("image_size", image_size)
    if cross_image_size is not None:
        cross_image_size = _check_size("cross_image_size", cross_image_size)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch dtype, got {dtype!r}")
    batch: List[ImageInput] = list(images) if isinstance(images, (list, tuple)) else [images]  # type: ignore[arg-type]
    if not batch:
        raise ValueError("no images given: pass one image or a non-empty list")
    rgbs = [load_rgb(item) for item in batch]
    out = {"images": torch.stack([to_normalized_tensor(rgb, image_size, dtype=dtype, device=device)
                                  for rgb in rgbs])}
    if cross_image_size is not None:
        out["cross_images"] = torch.stack(
            [to_normalized_tensor(rgb, cross_image_size, dtype=dtype, device=device) for rgb in rgbs])
    return out

