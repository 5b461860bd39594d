"""`python -m host_sim bundle make roster`: a school's roster signed for its terminal group, shown back
with its passes' days; a pass listed twice, bad weekdays or dates, no group: one clear line, exit 1."""

import json
import subprocess
import sys

from host_sim.paths import ROOT
from host_sim.tools import bundle
from protocol import fleet


def cli(*args):
    return subprocess.run([sys.executable, "-m", "host_sim", "bundle", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_make_show_and_refusals(tmp_path):
    key = str(tmp_path / "authority.pem")
    bundle.keygen(key, 1)
    out = str(tmp_path / "roster-1.zfb")
    made = cli("make", "roster", "--key", key, "--version", "1", "--group", "school-3", "--issuer", "9",
               "--pass", "505550494c303032", "--pass", "505550494c303031:mon,wed-fri:2026-09-01:2027-01-20",
               "--from", "2026-09-01", "--to", "2027-07-10", "--out", out)
    assert made.returncode == 0, made.stderr
    shown = json.loads(cli("show", out, "--config-keys", key + ".pub").stdout)
    assert shown["kind"] == "roster" and shown["signature"] == "ok"
    assert shown["roster"] == {"group": "school-3", "issuer": 9, "passes": [
        {"pass": "505550494c303031", "weekdays": "mon,wed,thu,fri", "from": "2026-09-01", "to": "2027-01-20"},
        {"pass": "505550494c303032", "weekdays": "mon,tue,wed,thu,fri", "from": "2026-09-01", "to": "2027-07-10"}]}
    with open(out, "rb") as f:
        assert bundle.newest(str(tmp_path))[(fleet.KIND_ROSTER, "school-3")][1] == f.read()
    base = ("make", "roster", "--key", key, "--version", "2", "--out", str(tmp_path / "r2.zfb"))
    for extra, message in [
        (("--group", "s", "--pass", "505550494c303031", "--pass", "505550494c303031"),
         "bundle: pass 505550494c303031 is on the roster twice\n"),
        (("--group", "s", "--pass", "505550494c303031", "--weekdays", "fri-mon"),
         "bundle: weekdays 'fri-mon': a range runs forward (mon-fri)\n"),
        (("--group", "s", "--pass", "505550494c303031:mon:2026-13-01:2027-01-01"),
         "bundle: date '2026-13-01' is not YYYY-MM-DD\n"),
        (("--group", "s", "--pass", "5055"), "bundle: pass id '5055' is not 8 bytes of hex\n"),
        (("--pass", "505550494c303031",), "bundle make roster needs --group NAME (the school's terminal group)\n"),
    ]:
        got = cli(*base, *extra)
        assert (got.returncode, got.stderr) == (1, message), (extra, got.stderr)
