"""Feature extraction of the content-policy model. gateway/src/policy/features.rs is the same
algorithm in Rust; `fixture.tsv` (written by train.py) pins both to the same indices, and a Rust
test reads it. Change both together, retrain, and commit the new weights and fixture.

A message becomes hashed indices into 2**BITS buckets:
  u|w      each token (a word, or a placeholder: <num> <code> <url> <email>, and %)
  b|w|v    each pair of neighbouring tokens
  c|g      character 3-5-grams of each word padded as ^word$ (Arabic attaches prefixes and
           suffixes to words: والخصومات and خصم share grams)
  e|x      each emoji
  s|...    style: exclamation marks, runs of !/?, words in capitals, emoji counts
Numbers, codes, links and email addresses become placeholders, so an OTP, an invoice number
or a tracking link is never a feature. Each distinct index counts once, weighing
1/sqrt(max(count, NORM_FLOOR)): unit length for a normal message, less for a short one, whose few
features are too little evidence to move far from the prior ("Hello" is not marketing). NORM_FLOOR
was chosen by train.py's grouped cross-validation (64 to 256 tried; a message averages about 170).
"""

BITS = 18
MASK = (1 << BITS) - 1
NORM_FLOOR = 128
FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
U64 = (1 << 64) - 1

# Rust's char::is_whitespace (the Unicode White_Space property).
WHITESPACE = set(
    [chr(c) for c in range(0x09, 0x0E)]
    + [" ", "\x85", "\xa0", "\u1680", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000"]
    + [chr(c) for c in range(0x2000, 0x200B)]
)
TLDS = {
    "com", "net", "org", "io", "co", "sa", "ae", "eg", "jo", "lb", "kw", "qa", "bh", "om", "me", "ly",
    "gl", "at", "app", "shop", "store", "info", "biz", "xyz", "top", "online", "site", "link", "gd",
    "cc", "ru", "fr", "de", "uk", "us", "in", "tv", "ai",
}
ARABIZI_DIGITS = set("2356789")
LEADING = set("([{\"'«“‘<")
TRAILING = set(".,;:!?)]}\"'»”’>…،؛؟")


def fnv1a(s):
    h = FNV_OFFSET
    for b in s.encode("utf-8"):
        h ^= b
        h = (h * FNV_PRIME) & U64
    return (h ^ (h >> 32)) & MASK


def fold(c):
    """policy::normalize's mapping of one lower-case character; None drops it."""
    o = ord(c)
    if 0x064B <= o <= 0x065F or o in (0x0670, 0x0640):
        return None
    if 0x200B <= o <= 0x200F or o in (0x2060, 0xFEFF, 0x00AD):
        return None
    if c in "أإآٱ":
        return "ا"
    if c == "ى":
        return "ي"
    if c == "ة":
        return "ه"
    if c == "٪":
        return "%"
    if c == "٫":
        return "."
    if c == "٬":
        return ","
    if 0x0660 <= o <= 0x0669:
        return chr(ord("0") + o - 0x0660)
    if 0x06F0 <= o <= 0x06F9:
        return chr(ord("0") + o - 0x06F0)
    return c


def is_word_char(c):
    o = ord(c)
    return (
        "0" <= c <= "9"
        or "a" <= c <= "z"
        or (0xDF <= o <= 0x24F and o != 0xF7)
        or 0x3B1 <= o <= 0x3C9
        or 0x430 <= o <= 0x45F
        or 0x620 <= o <= 0x64A
        or 0x66E <= o <= 0x66F
        or 0x671 <= o <= 0x6D3
        or o == 0x6D5
        or 0x6EE <= o <= 0x6EF
        or 0x6FA <= o <= 0x6FC
        or o == 0x6FF
        or 0x750 <= o <= 0x77F
    )


def is_pictograph(c):
    o = ord(c)
    return 0x1F300 <= o <= 0x1FAFF or 0x2600 <= o <= 0x27BF or 0x2B00 <= o <= 0x2BFF


def _is_domain(host):
    labels = host.split(".")
    if len(labels) < 2 or labels[-1] not in TLDS:
        return False
    ok = set("abcdefghijklmnopqrstuvwxyz0123456789-")
    return all(label and all(ch in ok for ch in label) for label in labels)


def link_kind(chunk):
    """'<url>', '<email>' or None for a whitespace-free piece of text stripped of punctuation."""
    low = chunk.lower()
    if "://" in low or low.startswith("www."):
        return "<url>"
    if "@" in low:
        local, _, host = low.rpartition("@")
        return "<email>" if local and _is_domain(host) else None
    host = low.split("/", 1)[0]
    return "<url>" if _is_domain(host) else None


def chunks(text):
    """(start, end) character offsets of whitespace-free runs."""
    out, start = [], None
    for i, c in enumerate(text):
        if c in WHITESPACE:
            if start is not None:
                out.append((start, i))
                start = None
        elif start is None:
            start = i
    if start is not None:
        out.append((start, len(text)))
    return out


def classify(word, original):
    if all(ch.isascii() and (ch.isdigit() or ch in ",.") for ch in word):
        return "<num>"
    digits = [ch for ch in word if "0" <= ch <= "9"]
    if not digits:
        return word
    letters = len(word) - len(digits)
    capitals = sum(1 for ch in original if "A" <= ch <= "Z")
    arabizi = (
        letters >= 2
        and len(digits) <= 3
        and all(d in ARABIZI_DIGITS for d in digits)
        and not ("0" <= word[-1] <= "9" and "0" <= word[-2] <= "9")
        and capitals < 2
    )
    return word if arabizi else "<code>"


def tokens(text):
    """(token, start, end): start/end are character offsets into text."""
    out = []
    for cs, ce in chunks(text):
        s, e = cs, ce
        while s < e and text[s] in LEADING:
            s += 1
        while e > s and text[e - 1] in TRAILING:
            e -= 1
        if s < e:
            kind = link_kind(text[s:e])
            if kind:
                out.append((kind, s, e))
                continue
        # Folded characters with the offset of the original character they came from.
        folded = []
        for i in range(cs, ce):
            for lc in text[i].lower():
                f = fold(lc)
                if f is not None:
                    folded.append((f, i))
        word, wstart, wend = "", 0, 0

        def flush():
            if word:
                out.append((classify(word, text[wstart:wend]), wstart, wend))

        for j, (f, i) in enumerate(folded):
            nxt = folded[j + 1][0] if j + 1 < len(folded) else ""
            if is_word_char(f) or (f in ",." and word[-1:].isdigit() and word[-1:].isascii() and nxt.isascii() and nxt.isdigit()):
                if not word:
                    wstart = i
                word += f
                wend = i + 1
            elif f in "'’" and word:
                continue
            else:
                flush()
                word = ""
                if f == "%":
                    out.append(("%", i, i + 1))
        flush()
    return out


def is_placeholder(tok):
    return tok.startswith("<") or tok == "%"


def style(text):
    feats = []
    if "!" in text or "！" in text:
        feats.append("s|bang")
    run = best = 0
    for c in text:
        run = run + 1 if c in "!?؟！" else 0
        best = max(best, run)
    if best >= 2:
        feats.append("s|bangrun")
    caps = 0
    for cs, ce in chunks(text):
        word = "".join(ch for ch in text[cs:ce] if ch.isascii() and ch.isalpha())
        if len(word) >= 3 and word.isupper() and word == text[cs:ce].strip(".,;:!?()\"'"):
            caps += 1
    if caps >= 2:
        feats.append("s|capswords")
    emoji = [c for c in text if is_pictograph(c)]
    if emoji:
        feats.append("s|emoji")
    if len(emoji) >= 3:
        feats.append("s|emoji3")
    feats.extend("e|" + c for c in emoji)
    return feats


def features(text):
    """(feature string, token positions it came from) in a fixed order."""
    toks = tokens(text)
    out = []
    for k, (t, _, _) in enumerate(toks):
        out.append(("u|" + t, (k,)))
    for k in range(len(toks) - 1):
        out.append(("b|" + toks[k][0] + "|" + toks[k + 1][0], (k, k + 1)))
    for k, (t, _, _) in enumerate(toks):
        if is_placeholder(t):
            continue
        padded = "^" + t + "$"
        for n in (3, 4, 5):
            for i in range(len(padded) - n + 1):
                out.append(("c|" + padded[i : i + n], (k,)))
    out.extend((f, ()) for f in style(text))
    return out


def indices(text):
    """Sorted distinct bucket indices: the model's input (each with value 1/sqrt(count))."""
    return sorted({fnv1a(f) for f, _ in features(text)})
