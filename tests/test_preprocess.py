"""vision.preprocess against independent computations.

References used here, none of which calls the code under test's resize:
* a solid-colour image, whose normalized value is known in closed form: (v/255 - mean) / std;
* a from-scratch numpy re-derivation of PIL's separable bicubic resampler (Keys cubic, a = -0.5, support 2
  widened by the downscale factor, weights normalized then turned into 22-bit fixed point, horizontal pass
  then vertical pass, each rounded and clipped to uint8) -- the algorithm torchvision's ``Resize`` ran on a
  PIL image with the Pillow of the official code, derived from its description rather than by calling PIL;
  it is checked against PIL's own C resampler where that runs a single pass;
* the same resampler with a triangle (bilinear) kernel, to show the comparison can tell filters apart.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from vision.preprocess import (
    CLIP_MEAN,
    CLIP_STD,
    load_rgb,
    preprocess,
    resize_square,
    to_normalized_tensor,
)

MEAN = np.array(CLIP_MEAN, dtype=np.float64)
STD = np.array(CLIP_STD, dtype=np.float64)


# ---------------------------------------------------------------- independent numpy reference of PIL resize
def _keys_cubic(x: float, a: float = -0.5) -> float:
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    if x < 2.0:
        return (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return 0.0


def _triangle(x: float) -> float:
    x = abs(x)
    return 1.0 - x if x < 1.0 else 0.0


def _fixed_point_weights(in_size: int, out_size: int, kernel, support: float):
    scale = in_size / out_size
    widen = max(scale, 1.0)  # antialias: the kernel is stretched over the footprint when shrinking
    reach = support * widen
    rows = []
    for out_index in range(out_size):
        center = (out_index + 0.5) * scale
        first = max(int(center - reach + 0.5), 0)
        last = min(int(center + reach + 0.5), in_size)
        weights = np.array([kernel((x - center + 0.5) / widen) for x in range(first, last)], dtype=np.float64)
        weights /= weights.sum()
        fixed = np.where(weights < 0, np.trunc(weights * (1 << 22) - 0.5), np.trunc(weights * (1 << 22) + 0.5))
        rows.append((first, fixed.astype(np.int64)))
    return rows


def _one_pass(pixels: np.ndarray, rows, axis: int) -> np.ndarray:
    moved = np.moveaxis(pixels.astype(np.int64), axis, 0)
    out = np.empty((len(rows),) + moved.shape[1:], dtype=np.int64)
    for index, (first, weights) in enumerate(rows):
        acc = (1 << 21) + np.tensordot(weights, moved[first:first + len(weights)], axes=(0, 0))
        out[index] = np.clip(acc >> 22, 0, 255)
    return np.moveaxis(out, 0, axis)


def reference_resize(pixels: np.ndarray, size: int, kernel=_keys_cubic, support: float = 2.0) -> np.ndarray:
    height, width = pixels.shape[:2]
    out = pixels
    if width != size:
        out = _one_pass(out, _fixed_point_weights(width, size, kernel, support), axis=1)
    if height != size:
        out = _one_pass(out, _fixed_point_weights(height, size, kernel, support), axis=0)
    return out.astype(np.uint8)


def reference_tensor(pixels_uint8: np.ndarray) -> np.ndarray:
    """ToTensor + Normalize in float64: [3, H, W]."""
    x = pixels_uint8.astype(np.float64) / 255.0
    return ((x - MEAN) / STD).transpose(2, 0, 1)


def _noise(width: int, height: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# ---------------------------------------------------------------- values
@pytest.mark.parametrize("colour", [(0, 0, 0), (255, 255, 255), (12, 200, 99), (255, 0, 128)])
@pytest.mark.parametrize("width,height", [(40, 30), (7, 90), (1, 1)])
def test_solid_colour_gives_closed_form_value(colour, width, height):
    out = preprocess(Image.new("RGB", (width, height), colour), image_size=14, cross_image_size=28)
    expected = (np.array(colour, dtype=np.float64) / 255.0 - MEAN) / STD
    for key, size in (("images", 14), ("cross_images", 28)):
        tensor = out[key]
        assert tensor.shape == (1, 3, size, size) and tensor.dtype == torch.float32
        for channel in range(3):
            np.testing.assert_allclose(tensor[0, channel].numpy(), expected[channel], rtol=0, atol=1e-6)


@pytest.mark.parametrize("width,height,size",
                         [(97, 61, 28), (13, 9, 56), (300, 17, 40), (5, 200, 64), (63, 65, 64), (100, 500, 20)])
def test_noise_matches_independent_bicubic_reference(width, height, size):
    pixels = _noise(width, height, seed=width)
    ours = to_normalized_tensor(Image.fromarray(pixels), size).numpy()
    expected = reference_tensor(reference_resize(pixels, size))
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-6)
    # the comparison can fail: a bilinear resize of the same noise is several levels off
    bilinear = reference_tensor(reference_resize(pixels, size, kernel=_triangle, support=1.0))
    assert np.abs(ours - bilinear).max() > 0.05


@pytest.mark.parametrize("width,height,size", [(97, 1, 28), (1, 61, 28), (13, 1, 56), (1, 9, 56), (300, 7, 40)])
def test_reference_agrees_with_pils_c_resampler_on_single_pass(width, height, size):
    """One axis at a time, PIL runs one pass, whose order cannot differ: the reference must equal it."""
    pixels = _noise(width, height, seed=height)
    for target in ((size, height), (width, size)):
        pil = np.asarray(Image.fromarray(pixels).resize(target, Image.Resampling.BICUBIC))
        ref = pixels
        if target[0] != width:
            ref = _one_pass(ref, _fixed_point_weights(width, target[0], _keys_cubic, 2.0), axis=1)
        if target[1] != height:
            ref = _one_pass(ref, _fixed_point_weights(height, target[1], _keys_cubic, 2.0), axis=0)
        np.testing.assert_array_equal(pil, ref.astype(np.uint8))


def test_portrait_phone_screenshot_keeps_horizontal_first_order():
    """A portrait image (width grows, height shrinks): the official order, not the installed Pillow's choice."""
    pixels = _noise(54, 120, seed=7)  # like 1080x2400 -> 1120: x upscaled, y downscaled
    ours = np.asarray(resize_square(Image.fromarray(pixels), 56))
    np.testing.assert_array_equal(ours, reference_resize(pixels, 56))


def test_same_size_image_is_only_normalized():
    pixels = _noise(32, 32, seed=3)
    ours = to_normalized_tensor(Image.fromarray(pixels), 32).numpy()
    np.testing.assert_allclose(ours, reference_tensor(pixels), rtol=0, atol=1e-6)


def test_float32_arithmetic_is_torchvision_order():
    """ToTensor divides in float32, Normalize subtracts then divides in float32: bit-exact with that order."""
    pixels = _noise(16, 16, seed=5)
    ours = to_normalized_tensor(Image.fromarray(pixels), 16)
    x = torch.from_numpy(pixels).permute(2, 0, 1).float() / 255
    manual = (x - torch.tensor(CLIP_MEAN).view(3, 1, 1)) / torch.tensor(CLIP_STD).view(3, 1, 1)
    assert torch.equal(ours, manual)


def test_aspect_ratio_is_squashed_not_padded():
    """Left half red, right half blue on a wide image: the square keeps the halves side by side."""
    image = Image.new("RGB", (400, 100), (255, 0, 0))
    image.paste((0, 0, 255), (200, 0, 400, 100))
    out = preprocess(image, image_size=20, cross_image_size=None)["images"][0]
    red = (1.0 - CLIP_MEAN[0]) / CLIP_STD[0]
    blue = (1.0 - CLIP_MEAN[2]) / CLIP_STD[2]
    assert torch.allclose(out[0, :, :8], torch.tensor(red), atol=1e-5)  # every row, left part
    assert torch.allclose(out[2, :, 12:], torch.tensor(blue), atol=1e-5)  # every row, right part


def test_batch_shapes_dtype_device_and_paths(tmp_path):
    first = Image.fromarray(_noise(50, 30, seed=1))
    second = Image.fromarray(_noise(20, 40, seed=2))
    path = tmp_path / "second.png"
    second.save(path)
    out = preprocess([first, path], image_size=14, cross_image_size=42, dtype=torch.bfloat16, device="cpu")
    assert out["images"].shape == (2, 3, 14, 14) and out["cross_images"].shape == (2, 3, 42, 42)
    assert out["images"].dtype == torch.bfloat16 and out["images"].device.type == "cpu"
    # bf16 is the float32 result rounded once, and the path gives the same pixels as the image
    f32 = preprocess([first, second], image_size=14, cross_image_size=42)
    assert torch.equal(out["cross_images"], f32["cross_images"].to(torch.bfloat16))
    assert not torch.equal(f32["images"][0], f32["images"][1])


def test_default_sizes_are_cogagents():
    out = preprocess(Image.new("RGB", (64, 48), (1, 2, 3)))
    assert out["images"].shape == (1, 3, 224, 224) and out["cross_images"].shape == (1, 3, 1120, 1120)


def test_cross_branch_can_be_left_out():
    assert set(preprocess(Image.new("RGB", (8, 8)), 14, None)) == {"images"}


# ---------------------------------------------------------------- colour modes
def test_rgba_drops_alpha_without_compositing():
    """As the official .convert('RGB'): a fully transparent red pixel stays red (not white)."""
    image = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert load_rgb(image).getpixel((0, 0)) == (255, 0, 0)


def test_la_palette_cmyk_bilevel_and_premultiplied_modes():
    assert load_rgb(Image.new("LA", (2, 2), (100, 0))).getpixel((0, 0)) == (100, 100, 100)
    palette = Image.new("P", (2, 2), 1)
    palette.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    assert load_rgb(palette).getpixel((1, 1)) == (10, 20, 30)
    assert load_rgb(Image.new("CMYK", (2, 2), (0, 255, 255, 0))).getpixel((0, 0)) == (255, 0, 0)
    assert load_rgb(Image.new("1", (2, 2), 1)).getpixel((0, 0)) == (255, 255, 255)
    assert load_rgb(Image.new("La", (2, 2), (80, 255))).getpixel((0, 0)) == (80, 80, 80)
    assert load_rgb(Image.new("L", (2, 2), 7)).mode == "RGB"


def test_sixteen_bit_greyscale_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    expected = [0, 1, 128, 255]  # round(v / 257)
    image = Image.fromarray(values)
    assert image.mode.startswith("I;16")
    assert [load_rgb(image).getpixel((x, 0))[0] for x in range(4)] == expected
    path = tmp_path / "deep.png"
    image.save(path)  # a real 16-bit PNG, read back by PIL in whatever mode it picks (I;16 or I)
    assert [load_rgb(path).getpixel((x, 0)) for x in range(4)] == [(v, v, v) for v in expected]


def test_int32_image_in_8_bit_range_is_kept():
    image = Image.fromarray(np.array([[0, 100, 255]], dtype=np.int32))
    assert image.mode == "I"
    assert [load_rgb(image).getpixel((x, 0))[0] for x in range(3)] == [0, 100, 255]


def test_animated_gif_uses_current_frame(tmp_path):
    frames = [Image.new("RGB", (6, 6), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert load_rgb(path).getpixel((0, 0)) == (255, 0, 0)  # a path: frame 0
    with Image.open(path) as opened:
        assert opened.is_animated
        opened.seek(1)
        assert load_rgb(opened).getpixel((0, 0)) == (0, 0, 255)  # an image: the frame it is on


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("bad", [42, None, b"\x89PNG", np.zeros((4, 4, 3), np.uint8), [[1, 2]]])
def test_not_an_image_is_a_type_error(bad):
    with pytest.raises(TypeError, match="PIL.Image.Image or a path"):
        preprocess(bad if not isinstance(bad, list) else [bad], 14, 28)


@pytest.mark.parametrize("size", [(0, 10), (10, 0), (0, 0)])
def test_zero_size_image(size):
    with pytest.raises(ValueError, match="zero size"):
        preprocess(Image.new("RGB", size), 14, 28)


def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        preprocess(tmp_path / "nope.png", 14, 28)
    with pytest.raises(FileNotFoundError):
        load_rgb(str(tmp_path / "nope.png"))


def test_path_that_is_not_an_image(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not pixels")
    with pytest.raises(ValueError, match="not an image file"):
        preprocess(text, 14, 28)
    with pytest.raises(ValueError, match="directory"):
        preprocess(tmp_path, 14, 28)


def test_truncated_image_file(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(_noise(64, 64)).save(buffer, format="PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ValueError, match="could not be decoded|not an image file"):
        preprocess(path, 14, 28)


@pytest.mark.parametrize("size", [0, -3, 2.5, True, "224"])
def test_bad_sizes(size):
    image = Image.new("RGB", (8, 8))
    with pytest.raises(ValueError, match="positive integer"):
        preprocess(image, image_size=size, cross_image_size=28)
    with pytest.raises(ValueError, match="positive integer"):
        preprocess(image, image_size=14, cross_image_size=size)
    with pytest.raises(ValueError, match="positive integer"):
        resize_square(image, size)


def test_empty_list_and_bad_dtype():
    with pytest.raises(ValueError, match="no images"):
        preprocess([], 14, 28)
    with pytest.raises(ValueError, match="floating"):
        preprocess(Image.new("RGB", (8, 8)), 14, 28, dtype=torch.int64)


def test_to_normalized_tensor_wants_rgb():
    with pytest.raises(ValueError, match="RGB"):
        to_normalized_tensor(Image.new("L", (8, 8)), 8)
