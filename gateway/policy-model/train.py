"""Trains the content-policy model and writes gateway/src/policy/model.bin and fixture.tsv.

    python3 gateway/policy-model/train.py            # train, report cross-validation, write files
    python3 gateway/policy-model/train.py --check    # only verify that the committed files are current

Deterministic: fixed seeds, a fixed solver, pinned versions (requirements.txt). The weights
file records the SHA-256 of everything it was trained from (data_sha256); a Rust test
recomputes it, so the weights cannot drift from the data unnoticed.
"""

import argparse
import hashlib
import math
import struct
import sys
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix, diags
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

import features as F
import generate

HERE = Path(__file__).resolve().parent
GATEWAY = HERE.parent
WEIGHTS = GATEWAY / "src" / "policy" / "model.bin"
FIXTURE = HERE / "fixture.tsv"
HELD_OUT = [GATEWAY / "tests" / "corpus" / "heldout_marketing.txt", GATEWAY / "tests" / "corpus" / "heldout_transactional.txt"]
# Inverse regularisation strength, chosen by grouped cross-validation (whole templates held out): with the IDF
# scaling (idf_weights), recall at the calibrated block point is flat for C from 1 to 8 and highest at 2.
C = 2.0
SEED = 7
# Calibration (see calibrate()): where the block threshold sits, and where a message without evidence lands.
BLOCK_POINTS, BLOCK_FPR = 70, 0.01
PRIOR_POINTS = 10


def hashed_files():
    """What the weights depend on: the data, the corpus files and these scripts."""
    return generate.data_files() + [HERE / "features.py", HERE / "generate.py", HERE / "train.py"]


def data_sha256():
    h = hashlib.sha256()
    for path in hashed_files():
        h.update(path.relative_to(GATEWAY).as_posix().encode("utf-8") + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def matrix(texts):
    rows, cols, vals = [], [], []
    for r, text in enumerate(texts):
        idx = F.indices(text)
        v = 1.0 / math.sqrt(max(len(idx), F.NORM_FLOOR))
        rows += [r] * len(idx)
        cols += idx
        vals += [v] * len(idx)
    return csr_matrix((vals, (rows, cols)), shape=(len(texts), 1 << F.BITS), dtype=np.float64)


def idf_weights(x):
    """Smoothed inverse document frequency of each bucket over the training messages, ln((n+1)/(df+1)) + 1.
    Training scales each feature by it, so a bucket that most messages have ("the", "and", a common
    character gram) is held closer to zero by the regularisation than a rare, telling one. The factor is
    folded into the stored weights, so scoring (features.rs, model.rs) does not change."""
    df = np.bincount(x.indices, minlength=x.shape[1]).astype(np.float64)
    return np.log((x.shape[0] + 1) / (df + 1)) + 1


def fit(x, y):
    model = LogisticRegression(C=C, class_weight="balanced", solver="liblinear", max_iter=2000, random_state=SEED)
    model.fit(x, y)
    return model


def logodds(points):
    p = points / 100.0
    return math.log(p / (1 - p))


def calibrate(cv_logits, y, intercept):
    """An affine map of the log-odds, folded into the weights, so that the gateway's points mean something fixed:
    the default block threshold (70 points) falls where grouped cross-validation (whole templates unseen) blocks
    BLOCK_FPR of the allowed messages, and a message with no evidence at all (the intercept) gets PRIOR_POINTS."""
    allowed = np.sort(cv_logits[y == 0])[::-1]
    at_block = float(allowed[int(BLOCK_FPR * len(allowed))])
    a = (logodds(BLOCK_POINTS) - logodds(PRIOR_POINTS)) / (at_block - intercept)
    c = logodds(PRIOR_POINTS) - a * intercept
    return a, c


def quantize(model, a, c, idf):
    w = model.coef_[0] * idf * a
    scale = float(np.max(np.abs(w))) / 32767.0
    q = np.round(w / scale).astype("<i2")
    return q, scale, float(model.intercept_[0]) * a + c


def logit(q, scale, bias, text):
    idx = F.indices(text)
    return bias + scale * float(sum(int(q[i]) for i in idx)) / math.sqrt(max(len(idx), F.NORM_FLOOR))


def weights_bytes(q, scale, bias, digest):
    header = (
        "WAG-POLICY-MODEL 1\n"
        f"bits {F.BITS}\n"
        f"scale {scale!r}\n"
        f"bias {bias!r}\n"
        f"data_sha256 {digest}\n"
        "\n"
    ).encode("ascii")
    return header + q.tobytes()


FIXTURE_EXTRA = [
    "",
    "   ",
    "Hi Sara! Your order ORD-88213 is out: https://shop.example.com/o/1 ✅",
    "والتَّخْفِيضَات مستمرة بالعروض ٥٠٪ لفترةٍ محدودة!!",
    "el collection el gdeda nezlet, 3ard 5asm SAVE20 482913 K7P2Q ta5fedat",
    "Don't miss it — 1,250.00 SAR at bit.ly/x!! Email us: sales@shop.example.com",
    "BUY NOW!!! MEGA SALE 🔥🔥🔥 أوكازيون (www.deals.sa) «عرض»",
    "Your code: 482 913. رمز الدخول: ٧٣١٩٠٤",
    "Ünïcödé ÀÉÎ straße İstanbul ΣΟΦΙΑ Москва",
    "b\u200buy n\u00adow ‏مرحبا‎ ـــتخفيضـــات",
    "x\ty\nz\u00a0w\u3000v",
    "(see: https://a.b/c?d=1), [x.com] <y.io/z> ok.",
]


def fixture_rows(texts, q, scale, bias):
    out = []
    for text in texts:
        toks = " ".join(t for t, _, _ in F.tokens(text))
        idx = ",".join(str(i) for i in F.indices(text))
        esc = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
        out.append(f"{esc}\t{toks}\t{idx}\t{logit(q, scale, bias, text):.6f}")
    return "# text\ttokens\tsorted distinct indices\tlogit (written by train.py)\n" + "\n".join(out) + "\n"


def held_out_texts():
    texts = set()
    for path in HELD_OUT:
        texts.update(text for _, text in generate.corpus_lines(path))
    return texts


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="only verify the committed weights are current")
    args = ap.parse_args()

    digest = data_sha256()
    if args.check:
        ok = WEIGHTS.exists() and f"data_sha256 {digest}\n".encode() in WEIGHTS.read_bytes()[:400]
        print("weights are current" if ok else "weights are stale: run train.py")
        sys.exit(0 if ok else 1)

    rows = generate.examples()
    leaked = held_out_texts() & {t for t, *_ in rows}
    if leaked:
        sys.exit(f"held-out messages found in the training data: {sorted(leaked)[:3]}")
    texts = [r[0] for r in rows]
    y = np.array([r[1] for r in rows])
    groups = np.array([r[2] for r in rows])
    base = matrix(texts)
    idf = idf_weights(base)
    x = (base @ diags(idf)).tocsr()
    print(f"{len(texts)} messages, {int(y.sum())} marketing, {x.nnz / len(texts):.0f} features each")

    # Whole templates are held out per fold, so variants of one template never help each other.
    cv_logits = np.zeros(len(texts))
    for train, test in GroupKFold(n_splits=5).split(x, y, groups):
        cv_logits[test] = fit(x[train], y[train]).decision_function(x[test])
    model = fit(x, y)
    a, c = calibrate(cv_logits, y, float(model.intercept_[0]))
    points = 100 / (1 + np.exp(-(a * cv_logits + c)))
    for cut in (40, 50, 60, 70, 80, 90):
        tp = int(((points >= cut) & (y == 1)).sum())
        fp = int(((points >= cut) & (y == 0)).sum())
        print(f"grouped CV, {cut}+ points: marketing {tp}/{int(y.sum())}, allowed {fp}/{int((y == 0).sum())}")
    for i in np.argsort(-(points * (y == 0)))[:6]:
        print(f"  highest allowed: {points[i]:.0f} {texts[i][:110]}")
    q, scale, bias = quantize(model, a, c, idf)
    WEIGHTS.write_bytes(weights_bytes(q, scale, bias, digest))
    sample = texts[:: max(1, len(texts) // 60)] + FIXTURE_EXTRA
    FIXTURE.write_text(fixture_rows(sample, q, scale, bias), encoding="utf-8")
    train_points = 100 / (1 + np.exp(-np.array([logit(q, scale, bias, t) for t in texts])))
    print(f"wrote {WEIGHTS.relative_to(GATEWAY.parent)} ({WEIGHTS.stat().st_size} bytes), data_sha256 {digest[:12]}…")
    caught = int(((train_points >= BLOCK_POINTS) & (y == 1)).sum())
    wrong = int(((train_points >= BLOCK_POINTS) & (y == 0)).sum())
    print(f"training set, final model, {BLOCK_POINTS}+ points: marketing {caught}/{int(y.sum())}, allowed {wrong}")


if __name__ == "__main__":
    main()
