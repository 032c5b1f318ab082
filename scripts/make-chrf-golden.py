#!/usr/bin/env python3
"""Generate the chrF golden values that hakaru's `chrf` scorer is tested against.

Run from the repository root:

    python3 scripts/make-chrf-golden.py

Needs sacrebleu (the file records the version; it was generated with 2.6.0:
`python3 -m pip install sacrebleu==2.6.0`).  The output is deterministic:
running the script twice gives byte-identical files.

Output: crates/hakaru-scorers/tests/data/chrf-golden.json, holding

* the sacrebleu version and the metric signature (chrF2, nc=6, nw=0, no
  whitespace, mixed case, effective order),
* the code points Python's `str.split()` treats as whitespace (sacrebleu removes
  them before extracting character n-grams; the Rust test checks that hakaru
  removes exactly these),
* every hypothesis/reference pair (written for this file) with sacrebleu's
  sentence-level chrF and its per-order statistics
  ([hyp, ref, match] for n = 1..6),
* corpus-level chrF over all pairs and over a few subsets.

The statistics come from `CHRF._extract_corpus_statistics`, a private method of
sacrebleu; scores come from the public `sentence_score` / `corpus_score`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import sacrebleu
from sacrebleu.metrics import CHRF

OUT = Path("crates/hakaru-scorers/tests/data/chrf-golden.json")

LONG_JA_HYP = (
    "日本の四季はそれぞれに美しく、春には桜が咲き誇り、夏には各地で花火大会が開かれます。"
    "秋になると山々が紅葉に染まり、冬には北国で雪景色を楽しむことができます。"
    "こうした季節の移ろいは、和歌や俳句などの文学にも深く影響を与えてきました。"
)
LONG_JA_REF = (
    "日本では四季の変化がはっきりしており、春は桜、夏は花火、秋は紅葉、冬は雪景色が楽しめます。"
    "季節の移り変わりは、古くから和歌や俳句といった日本文学に大きな影響を与えてきました。"
)
LONG_EN_HYP = (
    "The committee reviewed the proposal in detail and concluded that, although the budget "
    "was reasonable, the timeline was too ambitious for a project of this size. It therefore "
    "recommended extending the schedule by six months and adding two engineers to the team."
)
LONG_EN_REF = (
    "After a detailed review, the committee found the budget reasonable but the timeline too "
    "ambitious for a project of this scale, and recommended a six-month extension together "
    "with two additional engineers."
)

# (name, hypothesis, reference). Written for this file; no dataset text.
PAIRS: list[tuple[str, str, str]] = [
    ("ja-identical", "東京は日本の首都です。", "東京は日本の首都です。"),
    ("ja-paraphrase", "東京は日本の首都である。", "日本の首都は東京です。"),
    ("ja-keigo", "明日の会議に出席いたします。", "明日の会議に参加させていただきます。"),
    ("ja-zh-leak", "我认为这个问题很重要です。", "私はこの問題がとても重要だと思います。"),
    ("zh-simplified", "今天天气很好，我们去公园散步吧。", "今天天气不错，我们去公园走走吧。"),
    ("zh-traditional-vs-ja", "這個問題很難回答。", "この質問に答えるのは難しい。"),
    ("en-basic", "The cat sat on the mat.", "The cat is sitting on the mat."),
    ("en-word-order", "on the mat sat the cat", "the cat sat on the mat"),
    ("en-case", "HELLO WORLD", "hello world"),
    ("ja-en-mixed", "PythonでWebアプリを作る方法を説明します。",
     "Pythonを使ってWebアプリケーションを作る方法を説明します。"),
    ("ja-katakana", "コンピューターのメモリーが足りません。", "コンピュータのメモリが不足しています。"),
    ("fullwidth-vs-halfwidth", "ＡＢＣ１２３", "ABC123"),
    ("empty-hyp", "", "富士山は日本一高い山です。"),
    ("empty-ref", "富士山は日本一高い山です。", ""),
    ("both-empty", "", ""),
    ("whitespace-only-hyp", "   \t\n", "こんにちは"),
    ("whitespace-only-ref", "こんにちは", " \u3000 "),
    ("whitespace-only-both", "\u3000", "  "),
    ("one-char-identical", "山", "山"),
    ("one-char-different", "山", "川"),
    ("one-char-hyp", "山", "富士山"),
    ("two-char-hyp-one-char-ref", "はい", "は"),
    ("long-hyp-two-char-ref", "はい、その通りでございます。", "はい"),
    ("short-prefix", "ありがと", "ありがとう"),
    ("spaces-removed", "東京 は 日本 の 首都", "東京は日本の首都"),
    ("ideographic-space", "東京\u3000タワー", "東京タワー"),
    ("nbsp-thin-space", "a\u00a0b\u2009c", "abc"),
    ("python-only-whitespace-x1c", "ab\x1ccd\x1fe", "abcde"),
    ("zero-width-space-kept", "ab\u200bcd", "abcd"),
    ("punct-ja", "「はい！」と彼は言った……", "「はい」と彼は言いました。"),
    ("punct-en", "Wait... what?!", "Wait, what?"),
    ("emoji", "今日は楽しかった😊🎉", "今日は楽しかったです😊"),
    ("emoji-zwj", "👨\u200d👩\u200d👧 家族", "👨\u200d👩\u200d👦 家族"),
    ("combining-vs-precomposed", "\u30ab\u3099ラス", "\u30acラス"),
    ("repeated-clipped", "ははははははは", "はは"),
    ("repeated-short-hyp", "aaaa", "aaaaaaaaaa"),
    ("numbers-date", "2024年3月15日", "2024年3月16日"),
    ("ja-long", LONG_JA_HYP, LONG_JA_REF),
    ("en-long", LONG_EN_HYP, LONG_EN_REF),
    ("ko", "안녕하세요 반갑습니다", "안녕하세요, 만나서 반갑습니다"),
    ("unrelated", "abcdef", "ghijkl"),
    ("hyp-superset", "日本の首都は東京です。人口は約1400万人です。", "日本の首都は東京です。"),
    ("ja-code", "`let x = 1;` を使います", "`let x = 1;`を使用します"),
    ("astral-kanji", "𠮷野家の牛丼", "吉野家の牛丼"),
    ("newlines", "一行目\n二行目\r\n三行目", "一行目二行目三行目"),
    ("five-vs-six-chars", "abcde", "abcdef"),
]

# Corpus subsets (by pair name) besides the whole list.
SUBSETS: list[tuple[str, list[str]]] = [
    # A long hypothesis against a 2-char reference: sacrebleu leaves the
    # hypothesis n-grams of orders the reference lacks out of the corpus sums.
    ("short-refs", ["long-hyp-two-char-ref", "ja-paraphrase", "two-char-hyp-one-char-ref"]),
    ("with-empty-ref", ["empty-ref", "ja-keigo", "en-basic"]),
    ("japanese", ["ja-identical", "ja-paraphrase", "ja-keigo", "ja-katakana", "ja-long",
                  "ja-en-mixed"]),
    ("single", ["ja-keigo"]),
]


def main() -> int:
    names = [p[0] for p in PAIRS]
    assert len(set(names)) == len(names), "duplicate pair names"

    pairs = []
    for name, hyp, ref in PAIRS:
        metric = CHRF()
        score = metric.sentence_score(hyp, [ref]).score
        stats = CHRF()._extract_corpus_statistics([hyp], [[ref]])[0]
        assert len(stats) == 18
        pairs.append({
            "name": name,
            "hypothesis": hyp,
            "reference": ref,
            "sentence_chrf": score,
            "stats": [int(x) for x in stats],
        })

    def corpus(sel: list[int]) -> tuple[float, str]:
        metric = CHRF()
        score = metric.corpus_score([PAIRS[i][1] for i in sel],
                                    [[PAIRS[i][2] for i in sel]]).score
        return score, str(metric.get_signature())

    subsets = []
    for sname, members in SUBSETS:
        idx = [names.index(m) for m in members]
        subsets.append({"name": sname, "indices": idx, "chrf": corpus(idx)[0]})

    whitespace = [c for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    # Sanity check of the claim above: str.split() removes exactly these.
    assert "".join("".join(chr(c) for c in whitespace).split()) == ""

    corpus_chrf, signature = corpus(list(range(len(PAIRS))))
    doc = {
        "generator": "scripts/make-chrf-golden.py",
        "sacrebleu_version": sacrebleu.__version__,
        "signature": signature,
        "python_whitespace": whitespace,
        "pairs": pairs,
        "corpus_chrf": corpus_chrf,
        "corpus_subsets": subsets,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT}: {len(pairs)} pairs, corpus chrF {doc['corpus_chrf']:.4f} "
          f"(sacrebleu {sacrebleu.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
