"""Offline metrics in the form the datasets' papers report them (Mind2Web, AITW, ScreenSpot)."""
