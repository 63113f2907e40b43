"""A simulated Android phone reached over the real ADB wire protocol.

``PhoneSim`` (a phone-sized page in Chromium with Settings, a browser, notes, a calculator and a clock) sits
behind ``AdbServer`` (the device side of ADB over TCP) and ``DeviceShell`` (a real POSIX shell whose PATH holds
stubs of the phone's tools). ``python -m episodes.phone --port 5555`` starts one for a person to try.
"""

from .adb_server import AdbServer, parse_adb_public_key
from .device_shell import DeviceShell
from .phone_sim import DENSITY, DSF, PANEL, VIEWPORT, PhoneSim, decode_input_text

__all__ = ["AdbServer", "DeviceShell", "PhoneSim", "decode_input_text", "parse_adb_public_key", "PANEL", "DSF",
           "VIEWPORT", "DENSITY"]
