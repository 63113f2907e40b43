"""vision.geometry: the 0-999 <-> pixel convention, per axis, with clamping and reported fixes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vision.geometry import (
    NORM_MAX, Box, GeometryError, Grounding, Point, ScreenScale, box_to_norm, clamp_box, clamp_point, distance,
    ground, norm_to_pixel, pixel_to_norm, point_to_norm,
)


# --- the convention, stated independently -------------------------------------------------------------------
def test_bin_centres_on_a_1000_pixel_axis_are_identity():
    # with 1000 pixels each normalised value is exactly one pixel
    assert [norm_to_pixel(v, 1000) for v in range(1000)] == list(range(1000))
    assert [pixel_to_norm(p, 1000) for p in range(1000)] == list(range(1000))


def test_known_values_on_common_screens():
    # v=500 on 1280 px: bin [640, 641.28) -> centre 640.64 -> pixel 640
    assert norm_to_pixel(500, 1280) == 640
    # v=999 on 800 px: bin [799.2, 800) -> centre 799.6 -> pixel 799 (the last one)
    assert norm_to_pixel(999, 800) == 799
    assert norm_to_pixel(0, 800) == 0
    # a 2-pixel axis: the left half of the model's range is pixel 0, the right half pixel 1
    assert norm_to_pixel(499, 2) == 0 and norm_to_pixel(500, 2) == 1
    # pixel 0 of 2 has its centre at 0.25 of the axis -> 250
    assert pixel_to_norm(0, 2) == 250 and pixel_to_norm(1, 2) == 750


def test_x_scales_by_width_and_y_by_height():
    g = ground([500, 500], (1280, 720))
    assert g.point == Point(640, 360) and g.box is None and g.issues == ()
    g = ground([250, 750], (400, 1000))
    assert g.point == Point(100, 750)


@pytest.mark.parametrize("size", [1000, 1080, 1280, 1920, 2560, 3840])
def test_norm_to_pixel_to_norm_round_trips_on_large_axes(size):
    assert all(pixel_to_norm(norm_to_pixel(v, size), size) == v for v in range(1000))


@pytest.mark.parametrize("size", [1, 2, 7, 224, 720, 999, 1000])
def test_pixel_to_norm_to_pixel_round_trips_on_small_axes(size):
    assert all(norm_to_pixel(pixel_to_norm(p, size), size) == p for p in range(size))


@given(v=st.integers(0, NORM_MAX), size=st.integers(1, 8000))
def test_pixel_is_inside_the_bin_and_the_screen(v, size):
    p = norm_to_pixel(v, size)
    assert 0 <= p < size
    lo, hi = v / 1000 * size, (v + 1) / 1000 * size
    # the chosen pixel's span [p, p+1) overlaps the bin
    assert p < hi and p + 1 > lo


# --- boxes ---------------------------------------------------------------------------------------------------
def test_box_and_its_centre():
    g = ground([100, 200, 300, 400], (1000, 1000))
    assert g.box == Box(100, 200, 300, 400)
    assert g.point == Point(200, 300)
    assert g.norm == (100, 200, 300, 400) and g.issues == ()
    assert g.box.contains(g.point)


def test_box_centre_is_per_axis():
    g = ground([212, 498, 787, 564], (1280, 800))
    # centre (499.5, 531) in the model's space -> x (500/1000)*1280 = 640, y (531.5/1000)*800 = 425.2
    assert g.point == Point(640, 425)
    # corners: 212.5*1.28 = 272 exactly (a bin edge, no float drift), 498.5*0.8 = 398.8, 787.5*1.28 = 1008,
    # 564.5*0.8 = 451.6
    assert g.box == Box(272, 398, 1008, 451)


def test_swapped_corners_are_reordered_and_reported():
    g = ground([300, 400, 100, 200], (1000, 1000))
    assert g.box == Box(100, 200, 300, 400) and g.point == Point(200, 300)
    assert any("swapped" in i for i in g.issues)


@pytest.mark.parametrize("coords, which", [
    ([100, 200, 100, 400], "zero width"), ([100, 200, 300, 200], "zero height"),
    ([100, 200, 100, 200], "zero width and height"),
])
def test_degenerate_box_still_has_a_centre(coords, which):
    g = ground(coords, (1000, 1000))
    assert g.point == Point((coords[0] + coords[2]) // 2, (coords[1] + coords[3]) // 2)
    assert f"degenerate box ({which})" in " ".join(g.issues)


def test_point_box_and_degenerate_box_agree():
    size = (1366, 768)
    assert ground([123, 456, 123, 456], size).point == ground([123, 456], size).point


@pytest.mark.parametrize("coords, clamped", [
    ([1000, 500], [999, 500]), ([-5, 1200], [0, 999]), ([10, 20, 1024, 999], [10, 20, 999, 999]),
])
def test_out_of_range_values_are_clamped_and_reported(coords, clamped):
    g = ground(coords, (1000, 1000))
    assert list(g.norm) == clamped
    assert any("outside 0-999" in i for i in g.issues)
    assert all(0 <= v < 1000 for v in g.point.as_tuple())


def test_fractional_values_are_rounded_and_reported():
    g = ground([499.6, 10.0], (1000, 1000))
    assert g.norm == (500, 10) and any("not a whole number" in i for i in g.issues)


@pytest.mark.parametrize("coords", [[1], [1, 2, 3], [1, 2, 3, 4, 5], "12", None, [1, "a"], [float("nan"), 1],
                                    [True, 1], [math.inf, 0, 1, 1]])
def test_bad_coordinates_raise_clear_errors(coords):
    with pytest.raises(GeometryError):
        ground(coords, (100, 100))


@pytest.mark.parametrize("size", [(0, 100), (100, -1), (100,), "100x100", (1.5, 100), (True, 100)])
def test_bad_sizes_raise(size):
    with pytest.raises(GeometryError, match="size"):
        ground([1, 2], size)


def test_box_requires_ordered_corners_and_from_corners_orders_them():
    with pytest.raises(GeometryError, match="from_corners"):
        Box(10, 0, 5, 5)
    b = Box.from_corners(10, 20, 0, 5)
    assert b == Box(0, 5, 10, 20) and (b.width, b.height) == (11, 16)
    assert Box(3, 3, 3, 3).center == Point(3, 3)


# --- back to the model's space -------------------------------------------------------------------------------
def test_point_and_box_to_norm():
    assert point_to_norm(Point(640, 400), (1280, 800)) == (500, 500)
    assert point_to_norm((5000, -3), (1280, 800)) == (999, 0)  # off-screen pixels clamp onto the edge
    assert box_to_norm(Box(0, 0, 1279, 799), (1280, 800)) == (0, 0, 999, 999)
    assert box_to_norm((1279, 799, 0, 0), (1280, 800)) == (0, 0, 999, 999)


@given(x=st.integers(0, 999), y=st.integers(0, 999), w=st.integers(1000, 4000), h=st.integers(1000, 4000))
def test_ground_then_norm_round_trip(x, y, w, h):
    g = ground([x, y], (w, h))
    assert point_to_norm(g.point, (w, h)) == (x, y)


# --- clamping and distance -----------------------------------------------------------------------------------
def test_clamp_point_and_box():
    assert clamp_point((5, 5), (10, 10)) == (Point(5, 5), False)
    assert clamp_point((-1, 12), (10, 10)) == (Point(0, 9), True)
    assert clamp_point(Point(10, 9), (10, 10)) == (Point(9, 9), True)
    assert clamp_box(Box(-5, 2, 20, 3), (10, 10)) == (Box(0, 2, 9, 3), True)
    assert clamp_box(Box(1, 2, 3, 4), (10, 10)) == (Box(1, 2, 3, 4), False)
    with pytest.raises(GeometryError):
        clamp_point((float("nan"), 1), (10, 10))


def test_distance():
    assert distance((0, 0), Point(3, 4)) == 5.0


# --- screen scale --------------------------------------------------------------------------------------------
def test_screen_scale_is_measured_from_sizes():
    s = ScreenScale.measure((2560, 1600), (1280, 800))
    assert (s.sx, s.sy, s.factor, s.uniform) == (2.0, 2.0, 2.0, True)
    # screenshot pixel (390, 170) covers CSS [195, 195.5) x [85, 85.5): its centre is (195.25, 85.25)
    assert s.to_input((390, 170)) == (195.25, 85.25)
    assert s.to_input_int((390, 170)) == (195, 85)
    assert s.to_screenshot((195, 85)) == Point(391, 171)
    assert s.to_dict() == {"screenshot_size": [2560, 1600], "input_size": [1280, 800], "sx": 2.0, "sy": 2.0}


def test_screen_scale_one_and_anisotropic():
    s = ScreenScale.measure((1080, 2400), (1080, 2400))
    assert s.to_input_int((1079, 2399)) == (1079, 2399)
    assert s.to_screenshot((0, 0)) == Point(0, 0)
    a = ScreenScale.measure((1000, 1000), (500, 1000))
    assert (a.sx, a.sy, a.uniform) == (2.0, 1.0, False)


def test_screen_scale_fractional_factor_stays_on_screen():
    s = ScreenScale.measure((1920, 1200), (1280, 800))  # 1.5x
    assert s.to_input_int((1919, 1199)) == (1279, 799)
    assert s.to_screenshot((1279, 799)) == Point(1919, 1199)
    assert s.to_screenshot((5000, 5000)) == Point(1919, 1199)


@given(p=st.integers(0, 2559), q=st.integers(0, 1599), f=st.sampled_from([1, 1.25, 1.5, 2, 3]))
def test_screen_scale_round_trip_lands_in_the_same_input_unit(p, q, f):
    w, h = 1280, 800
    s = ScreenScale.measure((int(w * f), int(h * f)), (w, h))
    p, q = min(p, int(w * f) - 1), min(q, int(h * f) - 1)
    unit = s.to_input_int((p, q))
    back = s.to_screenshot(unit)
    assert s.to_input_int(back) == unit


@pytest.mark.parametrize("shot, inp", [((0, 10), (10, 10)), ((10, 10), (10, -2)), ((10,), (10, 10))])
def test_screen_scale_rejects_bad_sizes(shot, inp):
    with pytest.raises(GeometryError):
        ScreenScale.measure(shot, inp)


def test_grounding_is_a_plain_value():
    g = ground([1, 2, 3, 4], (100, 100))
    assert isinstance(g, Grounding) and g == ground([1, 2, 3, 4], (100, 100))
