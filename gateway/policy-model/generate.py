"""Expands the hand-written templates in data/ into labelled training messages.

Template files (data/templates_*.txt) hold blocks separated by blank lines. In a block, each
`M <kind>: text` line is marketing (label 1) and each `T <purpose>: text` line is allowed
traffic (label 0); most blocks pair a marketing template with a transactional twin that has
the same greeting, tone, punctuation and emoji, so that none of those is a shortcut.
Inside a text, `[a|b|c]` picks one alternative (an empty one is allowed) and `{slot}` picks a
value from data/slots.toml. Lines starting with `#` are comments.
Plain files (data/*.txt without `templates_`) use the corpus format: `[purpose] text` per line,
and their label comes from the file name (marketing_* or transactional_*).
"""

import random
import re
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
CORPUS = HERE.parent / "tests" / "corpus"
VARIANTS = 4

ALT = re.compile(r"\[([^\[\]]*)\]")
SLOT = re.compile(r"\{([a-z_0-9]+)\}")
LINE = re.compile(r"^([MT])\s+([a-z_0-9]+):\s*(.+)$")


def data_files():
    """Every file whose content the weights depend on, in a fixed order (hashed into the weights)."""
    files = sorted(p for p in DATA.iterdir() if p.is_file())
    files += [CORPUS / "marketing.txt", CORPUS / "transactional.txt"]
    return files


def expand(text, slots, rng):
    for _ in range(20):
        new = ALT.sub(lambda m: rng.choice(m.group(1).split("|")), text)
        if new == text:
            break
        text = new

    def slot(m):
        name = m.group(1)
        if name not in slots:
            raise SystemExit(f"unknown slot {{{name}}} in {text!r}")
        return rng.choice(slots[name])

    for _ in range(5):
        new = SLOT.sub(slot, text)
        if new == text:
            break
        text = new
    return re.sub(r"  +", " ", text).replace(" ,", ",").replace(" .", ".").strip()


def corpus_lines(path):
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^\[([a-z_]+)\]\s*(.*)$", line)
        yield (m.group(1), m.group(2)) if m else ("transactional", line)


def examples(seed=20260601):
    """(text, label, group, source) rows; group ties the variants of one template together."""
    rng = random.Random(seed)
    slots = tomllib.loads((DATA / "slots.toml").read_text(encoding="utf-8"))
    rows = []
    for path in sorted(DATA.glob("templates_*.txt")):
        for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            raw = raw.strip()
            if not raw or raw.startswith("#"):
                continue
            m = LINE.match(raw)
            if not m:
                raise SystemExit(f"{path.name}:{n}: not a template line: {raw!r}")
            mark, _kind, text = m.groups()
            label = 1 if mark == "M" else 0
            group = f"{path.name}:{n}"
            seen = set()
            for _ in range(VARIANTS * 3):
                t = expand(text, slots, rng)
                if t not in seen:
                    seen.add(t)
                    rows.append((t, label, group, path.name))
                if len(seen) >= VARIANTS:
                    break
    for path in data_files():
        if path.name.startswith("templates_") or path.suffix != ".txt":
            continue
        label = 1 if path.name.startswith("marketing") else 0
        for i, (_purpose, text) in enumerate(corpus_lines(path)):
            rows.append((text, label, f"{path.name}:{i}", path.name))
    return rows


if __name__ == "__main__":
    import sys

    rows = examples()
    for text, label, group, _ in rows[: int(sys.argv[1]) if len(sys.argv) > 1 else 20]:
        print(label, group, text)
    print(len(rows), "rows,", sum(r[1] for r in rows), "marketing")
