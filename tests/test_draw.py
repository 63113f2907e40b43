"""vision.draw: marks land where they are asked to, the original is untouched, Chinese labels render."""

from __future__ import annotations

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageFont

from vision.draw import annotate, cjk_font_path, draw_action, load_font
from vision.geometry import Box, Point

WHITE = (255, 255, 255)


def blank(w: int = 400, h: int = 300) -> Image.Image:
    return Image.new("RGB", (w, h), WHITE)


def changed(a: Image.Image, b: Image.Image) -> tuple[int, int, int, int] | None:
    return ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox()


def test_original_is_not_modified_and_output_is_rgb():
    img = Image.new("RGBA", (200, 100), (255, 255, 255, 255))
    before = img.copy()
    out = annotate(img, boxes=[(Box(10, 10, 50, 50), "x")])
    assert out.mode == "RGB" and out.size == img.size
    assert changed(img, before) is None
    assert changed(out, before) is not None


def test_box_outline_is_on_the_box_edges_only():
    img = blank()
    out = annotate(img, boxes=[(Box(100, 120, 200, 220), None)], color=(255, 0, 0))
    assert out.getpixel((100, 170)) == (255, 0, 0)  # left edge
    assert out.getpixel((200, 170)) == (255, 0, 0)  # right edge
    assert out.getpixel((150, 120)) == (255, 0, 0)  # top edge
    assert out.getpixel((150, 170)) == WHITE  # inside stays clear (the content is what matters)
    bbox = changed(img, out)
    assert bbox is not None and 98 <= bbox[0] and bbox[2] <= 203 and 118 <= bbox[1] and bbox[3] <= 223


def test_box_given_as_swapped_sequence_is_drawn_the_same():
    a = annotate(blank(), boxes=[((200, 220, 100, 120), None)], color=(0, 0, 255))
    b = annotate(blank(), boxes=[(Box(100, 120, 200, 220), None)], color=(0, 0, 255))
    assert changed(a, b) is None


def test_point_is_marked_around_the_pixel_and_centre_stays_visible():
    img = blank()
    out = annotate(img, points=[(Point(150, 100), None)], color=(0, 128, 0))
    bbox = changed(img, out)
    assert bbox is not None
    cx, cy = (bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2
    assert abs(cx - 150.5) <= 1.5 and abs(cy - 100.5) <= 1.5
    assert out.getpixel((150, 100)) == WHITE  # the crosshair leaves the exact pixel visible


def test_arrow_goes_from_start_to_end():
    img = blank()
    out = annotate(img, arrows=[((50, 150), (350, 150), None)], color=(0, 0, 0))
    assert out.getpixel((200, 150)) == (0, 0, 0)
    bbox = changed(img, out)
    assert bbox[0] <= 50 and bbox[2] >= 350
    # the head is at the end: more ink near 350 than near 50 above the line
    ink = lambda x0, x1: sum(out.getpixel((x, y)) != WHITE for x in range(x0, x1) for y in range(140, 148))  # noqa: E731
    assert ink(320, 350) > ink(55, 85)


def test_marks_near_the_edge_keep_labels_on_the_image():
    img = blank(200, 100)
    out = annotate(img, boxes=[(Box(150, 0, 199, 20), "a long label that will not fit")])
    assert out.size == (200, 100)


def test_chinese_label_renders_glyphs_not_boxes():
    path = cjk_font_path()
    assert path is not None, "fonts-noto-cjk is a declared system package of this project"
    font = load_font(24)
    assert isinstance(font, ImageFont.FreeTypeFont)
    # distinct characters give distinct glyph bitmaps (a font without them draws the same .notdef box)
    def glyph(ch: str) -> bytes:
        im = Image.new("L", (32, 32), 0)
        ImageDraw.Draw(im).text((2, 2), ch, fill=255, font=font)
        return im.tobytes()

    masks = [glyph(ch) for ch in ("搜", "索", "设")]
    assert len(set(masks)) == 3 and all(any(m) for m in masks)
    out = annotate(blank(), boxes=[(Box(50, 80, 300, 200), "搜索框")])
    assert changed(blank(), out) is not None


def test_caption_is_written_top_left():
    out = annotate(blank(), caption="KEY_PRESS enter")
    bbox = changed(blank(), out)
    assert bbox[0] == 0 and bbox[1] == 0


@pytest.mark.parametrize("action, region", [
    ({"type": "click", "point": [100, 80], "button": "left", "count": 1}, (80, 60, 125, 105)),
    ({"type": "swipe", "start": [50, 250], "end": [50, 50], "seconds": 0.3}, (30, 30, 80, 270)),
    ({"type": "scroll", "direction": "down", "amount": 3, "point": [300, 100]}, (280, 80, 320, 160)),
])
def test_draw_action_marks_the_action_where_it_acts(action, region):
    img = blank()
    out = draw_action(img, action, label="")
    bbox = changed(img, out)
    assert bbox is not None
    x0, y0, x1, y1 = region
    assert x0 <= bbox[0] and y0 <= bbox[1] and bbox[2] <= x1 + 1 and bbox[3] <= y1 + 1


def test_draw_action_with_box_and_without_point():
    img = blank()
    out = draw_action(img, {"type": "type_text", "text": "你好", "point": [150, 150], "submit": False},
                      box=Box(100, 130, 200, 170))
    assert out.getpixel((100, 150)) != WHITE
    nav = draw_action(img, {"type": "navigate", "target": "back"})
    bbox = changed(img, nav)
    assert bbox is not None and bbox[:2] == (0, 0)


@pytest.mark.parametrize("bad", [None, {}, {"point": [1, 2]}, "click"])
def test_draw_action_rejects_non_actions(bad):
    with pytest.raises(ValueError, match="type"):
        draw_action(blank(), bad)
