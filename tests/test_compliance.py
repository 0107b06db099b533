"""The advertising-law and platform-rule checker: the corpus of real-style copy (claims, evasions,
ordinary sentences, brand facts), folding that keeps exact spans, rule files, operators' lists,
brand profiles and the ``bot check`` command."""

from __future__ import annotations

import io
import json
import re
import tomllib
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.compliance import (
    BrandError,
    BrandProfile,
    Category,
    RulesError,
    Severity,
    check,
    default_rules,
    load_brand,
    load_rules,
)
from bot.compliance.check_cli import main
from bot.compliance.fold import fold, fold_char, fold_word

CORPUS = Path(__file__).parent / "corpus" / "compliance.jsonl"
BRANDS_FILE = Path(__file__).parent / "corpus" / "compliance_brands.json"
DATA = Path(__file__).resolve().parent.parent / "bot" / "compliance" / "data"
ROWS = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]
BRANDS = {key: BrandProfile.from_dict(raw) for key, raw in json.loads(BRANDS_FILE.read_text("utf-8")).items()}


def _expected(row: dict) -> list[tuple[str, str, int]]:
    out = []
    for item in row["expect"]:
        rule, phrase = item[0], item[1]
        start = item[2] if len(item) > 2 else row["text"].index(phrase)
        out.append((rule, phrase, start))
    return sorted(out, key=lambda e: (e[2], e[0]))


# --- the corpus --------------------------------------------------------------------------------


def test_the_corpus_is_big_enough_and_covers_every_kind() -> None:
    kinds = Counter(row["kind"] for row in ROWS)
    assert len(ROWS) >= 100
    assert kinds["ordinary"] >= 60 and kinds["brand-ordinary"] >= 10
    assert kinds["claim"] >= 40 and kinds["evasion"] >= 20 and kinds["platform"] >= 15 and kinds["brand"] >= 10
    assert len({row["id"] for row in ROWS}) == len(ROWS)
    found_rules = {item[0] for row in ROWS for item in row["expect"]}
    built_in = {rule.id for rule in default_rules().rules}
    assert built_in <= found_rules, f"rules with no corpus sentence: {sorted(built_in - found_rules)}"


@pytest.mark.parametrize("row", ROWS, ids=[row["id"] for row in ROWS])
def test_corpus_sentence(row: dict) -> None:
    text = row["text"]
    findings = check(text, style=row["style"], brand=BRANDS.get(row["brand"]) if row["brand"] else None)
    for finding in findings:
        assert text[finding.start : finding.end] == finding.phrase  # quotes exactly what was written
    got = sorted(((f.rule, f.phrase, f.start) for f in findings), key=lambda e: (e[2], e[0]))
    assert got == _expected(row), text


def test_no_ordinary_sentence_is_flagged_in_any_style() -> None:
    """False positives stay at zero: the ordinary sentences are clean under every platform's rules."""
    ordinary = [row for row in ROWS if row["kind"] in ("ordinary", "brand-ordinary")]
    flagged = {}
    for row in ordinary:
        brand = BRANDS.get(row["brand"]) if row["brand"] else None
        for style in (None, "xiaohongshu", "douyin", "selling-points", "moments", "weibo"):
            if style == "moments" or row["style"] == "moments":
                continue  # 在微信上… is ordinary only where WeChat is not another platform
            findings = check(row["text"], style=style, brand=brand)
            if findings:
                flagged[(row["id"], style)] = [(f.rule, f.phrase) for f in findings]
    assert flagged == {}


# --- folding -----------------------------------------------------------------------------------


def test_folding_sees_through_width_script_fillers_and_numerals() -> None:
    assert fold_word("ＮＯ．１") == "no1"
    assert fold_word("Top 1") == "top1"
    assert fold_word("全網最低價") == "全网最低价"
    assert fold_word("最\u200b佳") == fold_word("最 * 佳") == fold_word("最🔥佳") == "最佳"
    assert fold_word("第①名") == fold_word("第1名") == fold_word("第壹名") == "第一名"
    assert fold_word("第10名") == "第10名"
    assert fold_word("the best") == "the best"  # Latin words stay apart
    assert fold_word("最，佳") == "最,佳"  # clause punctuation is never skipped (NFKC: ，→ ,)


def test_a_finding_maps_back_to_the_original_even_when_characters_are_dropped_or_expanded() -> None:
    text = "㎖装的\u200b\u200b最\ufe0f佳№1"
    folded = fold(text)
    assert folded.light.text == "ml装的最佳no1"
    findings = check(text)
    assert [(f.phrase, f.rule) for f in findings] == [("最\ufe0f佳", "absolute.superlative"), ("№1", "absolute.first")]
    assert text[findings[0].start : findings[0].end] == "最\ufe0f佳"


FILLERS = st.lists(st.sampled_from([" ", "*", "·", "\u200b", "~", "-", "🔥", "　", "_", "/"]), max_size=3).map("".join)
ORDINARY = [row["text"] for row in ROWS if row["kind"] == "ordinary" and row["style"] != "moments"]


@settings(max_examples=150, deadline=None)
@given(
    fillers=st.lists(FILLERS, min_size=4, max_size=4),
    before=st.sampled_from(ORDINARY),
    after=st.sampled_from(ORDINARY),
    wide=st.booleans(),
)
def test_a_claim_split_by_fillers_is_found_with_its_exact_span(
    fillers: list[str], before: str, after: str, wide: bool
) -> None:
    word = "全网最低价"
    if wide:
        word = "全網最低價"
    split = "".join(ch + gap for ch, gap in zip(word, [*fillers, ""]))
    text = f"{before}。{split}。{after}"
    findings = check(text)
    assert [(f.rule, f.phrase, f.start) for f in findings] == [("price.lowest", split, len(before) + 1)]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_folding_any_text_gives_ordered_origins_inside_it(text: str) -> None:
    folded = fold(text)
    for view in (folded.light, folded.tight):
        assert len(view.origin) == len(view.text)
        assert list(view.origin) == sorted(view.origin)
        assert all(0 <= i < len(text) for i in view.origin)
    for finding in check(text, style="xiaohongshu"):
        assert text[finding.start : finding.end] == finding.phrase and finding.start < finding.end


# --- findings and rules ------------------------------------------------------------------------


def test_findings_carry_category_severity_explanations_source_and_rewrite() -> None:
    by_phrase = {f.phrase: f for f in check("这是最好用的面霜，销量第一，加vx：abc12345", style="xiaohongshu")}
    best = by_phrase["最好用"]
    assert best.category is Category.ABSOLUTE and best.severity is Severity.MUST_FIX
    assert best.suggestion == "很好用" and "第九条" in best.explanation_zh and "art. 9(3)" in best.explanation_en
    assert "广告法" in best.source and "2026-12-07" in best.source
    assert by_phrase["销量第一"].suggestion == "销量领先"
    contact = by_phrase["vx：abc12345"]
    assert contact.category is Category.PLATFORM and contact.suggestion == ""  # delete it
    assert json.loads(json.dumps([f.to_dict() for f in by_phrase.values()], ensure_ascii=False))[0]["rule"]


def test_platform_rules_apply_only_to_their_styles() -> None:
    text = "想要的加我vx：meimei_2024，电话13812345678"
    assert check(text) == [] and check(text, style="moments") == [] and check(text, style="linkedin") == []
    for style in ("xiaohongshu", "douyin"):
        rules = {f.rule for f in check(text, style=style)}
        assert rules == {"platform.dm-invite", "platform.contact-id", "platform.phone"}
    assert {f.rule for f in check(text, style="selling-points")} == {"platform.contact-id", "platform.phone"}


def test_a_wider_review_finding_keeps_a_must_fix_inside_it() -> None:
    findings = check("比专柜最低价还便宜")
    assert [(f.rule, f.phrase) for f in findings] == [
        ("price.comparison", "比专柜最低价还便宜"),
        ("price.lowest", "最低价"),
    ]


def test_every_rule_file_names_its_source_and_date_and_its_words_are_live() -> None:
    from bot.copywriting.styles import STYLES

    rules = default_rules()
    assert len(rules.files) == len(list(DATA.glob("*.toml")))
    for path in DATA.glob("*.toml"):
        data = tomllib.loads(path.read_text("utf-8"))
        assert data["source"]["reference"] and data["source"]["compiled"]
    for rule in rules.rules:
        assert rule.styles <= set(STYLES), rule.id
        assert rule.explanation_zh and rule.explanation_en
        words = {fold_word(t) for t in rule.terms}
        for term in rule.terms:
            assert fold_word(term), (rule.id, term)
        for phrase in rule.allow:  # an allowed phrase that contains none of the rule's words never acts
            folded = fold_word(phrase)
            live = any(w in folded for w in words) or any(re.search(p, folded) for p in rule.patterns)
            assert live, (rule.id, phrase)
        for pattern in rule.patterns:  # patterns are written in folded (simplified, lower-case) form
            literal = re.sub(r"\\.", "", pattern)
            assert all(fold_char(ch) == ch for ch in literal if unicodedata.category(ch).startswith("L")), (
                rule.id,
                pattern,
            )


def test_operators_add_words_exceptions_and_switch_rules_off(tmp_path: Path) -> None:
    (tmp_path / "house.toml").write_text(
        """
exceptions = ["最佳拍档"]
disable = ["guarantee.absolute-word"]

[source]
title = "House list"
reference = "市场部禁用词 2026 版"
compiled = 2026-12-01

[[rules]]
id = "house.rivals"
severity = "review"
zh = "不点名竞品。"
en = "Never name a rival."
suggest = "某些品牌"
terms = ["竞品A"]

[[extend]]
rule = "absolute.first"
terms = ["头牌"]
allow = ["第一宝"]
""",
        encoding="utf-8",
    )
    rules = load_rules(tmp_path)
    text = "最佳拍档新品，比競品Ａ好用，绝对是头牌，第一宝出品，最佳选择"
    got = [(f.rule, f.phrase, f.category) for f in check(text, rules=rules)]
    assert got == [
        ("house.rivals", "競品Ａ", Category.CUSTOM),
        ("absolute.first", "头牌", Category.ABSOLUTE),
        ("absolute.superlative", "最佳", Category.ABSOLUTE),
    ]
    assert check(text, rules=rules)[-1].start == text.rindex("最佳")
    assert "guarantee.absolute-word" in {f.rule for f in check(text)}  # only this operator's rules changed


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[[rules]\n", "not valid TOML"),
        ('[[rules]]\nid = "x"\nzh = "z"\nterms = ["a"]\n', "[source] table is required"),
        (
            '[source]\ntitle = "t"\nreference = "r"\ncompiled = 2026-01-01\n[[rules]]\nid = "x"\ncategory = "nope"\n'
            'zh = "z"\nterms = ["a"]\n',
            "'nope' is not one of",
        ),
        (
            '[source]\ntitle = "t"\nreference = "r"\ncompiled = 2026-01-01\n[[rules]]\nid = "absolute.first"\n'
            'zh = "z"\nterms = ["a"]\n',
            "already defined",
        ),
        (
            '[source]\ntitle = "t"\nreference = "r"\ncompiled = 2026-01-01\n[[rules]]\nid = "x"\nzh = "z"\n'
            "patterns = ['(']\n",
            "bad pattern",
        ),
        ('disable = ["no.such.rule"]\n', "unknown rules"),
    ],
)
def test_a_broken_operator_file_is_refused_with_its_name_and_problem(
    tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / "bad.toml").write_text(content, encoding="utf-8")
    with pytest.raises(RulesError, match=re.escape(message)):
        load_rules(tmp_path)


# --- brand profiles ----------------------------------------------------------------------------


def test_a_brand_profile_round_trips_and_reads_json_and_toml(tmp_path: Path) -> None:
    profile = BRANDS["nuanju"]
    assert BrandProfile.from_dict(profile.to_dict()) == profile
    assert [str(p.price) for p in profile.products] == ["¥89", "¥159"]
    assert str(profile.products[1].specs[0]) == "容量 500ml"
    (tmp_path / "b.json").write_text(json.dumps(profile.to_dict(), ensure_ascii=False), encoding="utf-8")
    assert load_brand(tmp_path / "b.json") == profile
    (tmp_path / "b.toml").write_text(
        'name = "暖居"\nwords_never = ["爆款"]\n[[products]]\nname = "保温杯"\n'
        'price = "89元"\nspecs = { "容量" = "350ml" }\n',
        encoding="utf-8",
    )
    toml_profile = load_brand(tmp_path / "b.toml")
    assert toml_profile.products[0].price == profile.products[0].price
    assert toml_profile.products[0].spec("容量") == profile.products[0].spec("容量")
    with pytest.raises(BrandError, match="products\\[0\\].price"):
        BrandProfile.from_dict({"name": "x", "products": [{"name": "y", "price": "很便宜"}]})
    with pytest.raises(BrandError, match="name"):
        BrandProfile.from_dict({"products": []})


def test_brand_facts_and_names_change_what_is_found() -> None:
    brand = BRANDS["shanchaji"]
    price = check("山茶花精华到手价99元", brand=brand)[0]
    assert (price.rule, price.phrase, price.category, price.suggestion) == (
        "brand.price",
        "99元",
        Category.BRAND_FACT,
        "129元",
    )
    assert "¥129" in price.explanation_zh
    assert check("山茶花精华到手价99元") == []  # without a profile there is nothing to contradict
    spec = check("山茶花精华容量50ml", brand=brand)[0]
    assert (spec.rule, spec.suggestion) == ("brand.spec.容量", "30ml")
    assert check("山茶花精华容量0.03l", brand=brand) == []  # the same volume in litres
    assert check("山茶花精华重量0.12kg", brand=brand) == []
    # The brand's own names are not claims (SAMR: names and trademarks), elsewhere the words are.
    zuijia = BRANDS["zuijia"]
    assert check("最佳拍档的第一口酸奶", brand=zuijia) == []
    assert [f.phrase for f in check("最佳拍档的第一口酸奶是最佳选择", brand=zuijia)] == ["最佳"]


# --- the command line --------------------------------------------------------------------------


def test_bot_check_reports_findings_with_line_and_column_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    draft = tmp_path / "draft.txt"
    draft.write_text("今天分享一款面霜\n真的是全网最低价，加vx：abc12345\n", encoding="utf-8")
    assert main([str(draft), "--style", "小红书"]) == 1  # a style's alias works too
    out = capsys.readouterr().out
    assert f"{draft}:2:4: must-fix [price.lowest] 「全网最低价」 → 活动价" in out
    assert f"{draft}:2:11: must-fix [platform.contact-id] 「vx：abc12345」 → 删除 (delete)" in out
    assert out.rstrip().endswith("2 must-fix, 0 review")
    assert main([str(draft)]) == 1  # law only: the price claim is still there
    assert "platform." not in capsys.readouterr().out


def test_bot_check_reads_stdin_and_exits_0_when_clean(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("第一次来这家店，最近常来。"))
    assert main(["-"]) == 0
    assert capsys.readouterr().out.strip() == "clean: nothing found"
    monkeypatch.setattr("sys.stdin", io.StringIO("最近常来"))
    assert main(["--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_bot_check_json_lists_findings_with_positions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    brand = tmp_path / "brand.json"
    brand.write_text(
        json.dumps(json.loads(BRANDS_FILE.read_text("utf-8"))["shanchaji"], ensure_ascii=False), encoding="utf-8"
    )
    draft = tmp_path / "d.txt"
    draft.write_text("山茶花精华到手价99元\n别买便宜货", encoding="utf-8")
    assert main([str(draft), "--brand", str(brand), "--format", "json"]) == 1
    found = json.loads(capsys.readouterr().out)
    assert [(f["rule"], f["phrase"], f["line"], f["column"], f["severity"]) for f in found] == [
        ("brand.price", "99元", 1, 9, "must-fix"),
        ("brand.never", "便宜货", 2, 3, "must-fix"),
    ]
    assert found[0]["category"] == "brand-fact" and found[0]["suggestion"] == "129元"


@pytest.mark.parametrize(
    "argv",
    [
        ["--format", "xml"],
        ["--style", "no-such-style"],
        ["/no/such/file.txt"],
        ["--brand", "/no/such.json"],
        ["--bogus"],
    ],
)
def test_bot_check_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err


def test_bot_check_bad_rules_dir_or_brand_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.toml").write_text("not toml [", encoding="utf-8")
    draft = tmp_path / "d.txt"
    draft.write_text("你好", encoding="utf-8")
    assert main([str(draft), "--rules-dir", str(tmp_path)]) == 2
    assert "x.toml" in capsys.readouterr().err
    bad = tmp_path / "b.json"
    bad.write_text('{"name": "x", "products": [{"name": "y", "price": "free"}]}', encoding="utf-8")
    assert main([str(draft), "--brand", str(bad)]) == 2
    assert "brand profile" in capsys.readouterr().err


# --- speed: measured by bench/compliance.py (a figure, not a timed test) ---------------------


def test_the_speed_benchmark_runs_and_reports_its_figures() -> None:
    from bench.compliance import measure

    figures = measure(repeats=3)
    assert figures["chars"] == 2000 and figures["findings"] >= 3 and figures["median_ms"] > 0
