"""Where the real-world vectors are: ../shared/vectors/realworld beside the checkout (or beside the folder
of worktrees); tests that read them skip when they are absent."""

import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
CANDIDATES = [base / "shared" / "vectors" / "realworld" for base in (ROOT.parent, ROOT.parent.parent)]
DIR = next((p for p in CANDIDATES if p.is_dir()), None)
ABSENT = "real-world vectors (../shared/vectors/realworld) not present"


def load(name):
    with open(DIR / name, encoding="utf-8") as f:
        return json.load(f)
