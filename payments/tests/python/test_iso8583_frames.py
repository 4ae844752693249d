"""Decode frames captured from posmesh-acquirer with pyiso8583 (PyPI, third party).

Proves posmesh's ISO 8583 wire format is the standard one: every captured frame is a
2-byte big-endian length prefix followed by an ISO 8583:1987 message (ASCII MTI, binary
bitmaps, ASCII fields) that pyiso8583's `specs.default` decodes, and re-encoding the
decoded message gives back the same bytes.

Run by payments/tests/payments/python_frames.rs with POSMESH_ISO8583_CAPTURE naming a capture
file of `recv <hex>` / `sent <hex>` lines; or by hand:
    POSMESH_ISO8583_CAPTURE=capture.hex python3 test_iso8583_frames.py
"""

import os
import sys
import unittest

import iso8583
from iso8583.specs import default as SPEC


def load_frames():
    path = os.environ.get("POSMESH_ISO8583_CAPTURE")
    if not path:
        raise SystemExit("POSMESH_ISO8583_CAPTURE is not set")
    frames = []
    with open(path, encoding="ascii") as capture:
        for number, line in enumerate(capture, 1):
            direction, hexdata = line.split()
            frames.append((number, direction, bytes.fromhex(hexdata)))
    return frames


class CapturedFrames(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.messages = []
        for number, direction, frame in load_frames():
            length = int.from_bytes(frame[:2], "big")
            if length != len(frame) - 2:
                raise AssertionError(f"line {number}: prefix {length} != body {len(frame) - 2}")
            body = frame[2:]
            decoded, _ = iso8583.decode(bytearray(body), SPEC)
            cls.messages.append((number, direction, body, decoded))

    def by_mti(self, mti):
        return [m for (_, _, _, m) in self.messages if m["t"] == mti]

    def test_every_exchange_is_present(self):
        mtis = {m["t"] for (_, _, _, m) in self.messages}
        for mti in ["0100", "0110", "0200", "0210", "0220", "0221", "0230", "0400", "0410"]:
            self.assertIn(mti, mtis)

    def test_reencoding_gives_the_same_bytes(self):
        for number, _, body, decoded in self.messages:
            fields = {k: v for k, v in decoded.items() if k not in ("p", "1")}
            encoded, _ = iso8583.encode(fields, SPEC)
            self.assertEqual(bytes(encoded), body, f"line {number}")

    def test_field_formats(self):
        for number, direction, _, m in self.messages:
            where = f"line {number} ({direction} {m['t']})"
            self.assertRegex(m["4"], r"^\d{12}$", where)
            self.assertRegex(m["11"], r"^\d{6}$", where)
            self.assertRegex(m["7"], r"^\d{10}$", where)
            self.assertEqual(m["49"], "826", where)  # GBP, ISO 4217 numeric
            self.assertEqual(len(m["41"]), 8, where)
            self.assertRegex(m["37"], r"^[0-9A-Z]{12}$", where)
            self.assertRegex(m["2"], r"^\d{12,19}$", where)
            if m["t"].endswith("0") and m["t"][2] in "13":  # responses: x110, x210, x230, x410
                self.assertRegex(m["39"], r"^[0-9A-Z]{2}$", where)

    def test_repeat_advice_keeps_the_trace_number(self):
        (advice,) = self.by_mti("0220")
        (repeat,) = self.by_mti("0221")
        self.assertEqual(advice["11"], repeat["11"])
        self.assertEqual(advice["37"], repeat["37"])
        self.assertEqual(advice["4"], repeat["4"])

    def test_reversal_names_the_original(self):
        (reversal,) = self.by_mti("0400")
        self.assertIn("1", reversal, "field 90 needs the secondary bitmap")
        original = reversal["90"]
        self.assertEqual(len(original), 42)
        self.assertEqual(original[:4], "0100")
        self.assertEqual(original[4:10], reversal["11"])
        self.assertEqual(original[10:20], reversal["7"])
        originals = [m for m in self.by_mti("0100") if m["11"] == reversal["11"]]
        self.assertEqual(len(originals), 1)
        (answer,) = self.by_mti("0410")
        self.assertEqual(answer["39"], "00")

    def test_approved_and_declined_answers(self):
        approved = [m for m in self.by_mti("0110")]
        self.assertTrue(all(m["39"] == "00" and len(m["38"]) == 6 for m in approved))
        (declined,) = self.by_mti("0210")
        self.assertEqual(declined["39"], "51")


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0], "-v"])
