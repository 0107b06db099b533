"""The built-in writing styles, and custom styles from free text.

A ``Style`` holds what goes into the stable system prompt (``system_prompt()``: identical
bytes every time, so prompt caching survives style switches elsewhere), the platform's
limits (``Constraints``, checked in code by ``constraints.py``) and the fields its variants
have (which decide the JSON schema in ``schema.py`` and the rendering in ``render.py``).

A conversation stores its style as a string (``Conversation.style``): a built-in id, or
``custom:<the user's description>`` (``to_stored`` / ``resolve_style``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Variant fields a style can ask for (see variants.Variant).
TITLE, BODY, HASHTAGS, ITEMS, SEGMENTS = "title", "body", "hashtags", "items", "segments"
CUSTOM_PREFIX = "custom:"
MAX_CUSTOM_CHARS = 1_000


@dataclass(frozen=True, slots=True)
class Constraints:
    """Platform limits. Lengths are user-perceived characters (see measure.py)."""

    title_max: int | None = None
    body_max: int | None = None
    body_min: int | None = None
    hashtags_min: int = 0
    hashtags_max: int | None = None
    hashtag_format: str = "plain"  # "plain" (#tag) or "weibo" (#话题#) when rendered
    emoji_min: int = 0
    items_min: int | None = None
    items_max: int | None = None
    item_max: int | None = None  # characters per list item
    script_seconds_max: int | None = None  # voice-over scripts: last timing cue
    voice_max: int | None = None  # voice-over scripts: spoken characters in total

    def describe(self, language: str) -> list[str]:
        """The limits as short lines for the prompt (English or Chinese)."""
        zh = language == "zh"
        lines = []
        if self.title_max:
            lines.append(f"标题不超过 {self.title_max} 字" if zh else f"title: at most {self.title_max} characters")
        if self.body_max or self.body_min:
            if zh:
                lines.append(
                    f"正文 {self.body_min or 0}–{self.body_max} 字"
                    if self.body_min
                    else f"正文不超过 {self.body_max} 字"
                )
            else:
                lines.append(
                    f"body: {self.body_min or 0}–{self.body_max} characters"
                    if self.body_min
                    else f"body: at most {self.body_max} characters"
                )
        if self.hashtags_max is not None or self.hashtags_min:
            hi = self.hashtags_max if self.hashtags_max is not None else "any"
            if self.hashtags_max == 0:
                lines.append("不加话题标签" if zh else "no hashtags")
            else:
                lines.append(f"话题标签 {self.hashtags_min}–{hi} 个" if zh else f"hashtags: {self.hashtags_min}–{hi}")
        if self.emoji_min:
            lines.append(f"至少 {self.emoji_min} 个 emoji" if zh else f"at least {self.emoji_min} emoji")
        if self.items_min or self.items_max:
            lines.append(f"{self.items_min}–{self.items_max} 条" if zh else f"{self.items_min}–{self.items_max} items")
        if self.item_max:
            lines.append(f"每条不超过 {self.item_max} 字" if zh else f"each item at most {self.item_max} characters")
        if self.script_seconds_max:
            lines.append(
                f"总时长不超过 {self.script_seconds_max} 秒，每段标注时间如 0-3s"
                if zh
                else f"total length at most {self.script_seconds_max} s; time cues like 0-3s"
            )
        if self.voice_max:
            lines.append(
                f"口播总字数不超过 {self.voice_max} 字" if zh else f"spoken text at most {self.voice_max} characters"
            )
        return lines


@dataclass(frozen=True, slots=True)
class Style:
    id: str
    name_zh: str
    name_en: str
    language: str  # the language the copy is written in: "zh" or "en"
    summary: str  # one line for the /style list
    instructions: str
    fields: tuple[str, ...]  # variant fields, all required
    constraints: Constraints = field(default_factory=Constraints)
    aliases: tuple[str, ...] = ()
    custom_text: str | None = None  # set for custom styles

    @property
    def names(self) -> dict[str, str]:
        return {"zh": self.name_zh, "en": self.name_en}

    @property
    def is_custom(self) -> bool:
        return self.custom_text is not None

    @property
    def display_name(self) -> str:
        return self.name_zh if self.language == "zh" else self.name_en

    def system_prompt(self) -> str:
        """The section for the stable system prompt. Deterministic: same style, same bytes."""
        limits = self.constraints.describe(self.language)
        head = (
            f"Writing style for this conversation: {self.name_en} ({self.name_zh}). "
            "When asked for copy, write in this style."
        )
        parts = [head, self.instructions.strip()]
        if limits:
            parts.append(
                (
                    "Platform limits (counted in characters as users see them, an emoji is one): "
                    if self.language == "en"
                    else "平台限制（按用户看到的字数计，一个 emoji 算 1 个字）："
                )
                + "; ".join(limits)
                + "."
            )
        return "\n".join(parts)

    def stored(self) -> str:
        """The value to keep in ``Conversation.style``."""
        return CUSTOM_PREFIX + self.custom_text if self.custom_text is not None else self.id


def _s(**kw: object) -> Style:
    return Style(**kw)  # type: ignore[arg-type]


BUILTIN: tuple[Style, ...] = (
    _s(
        id="xiaohongshu",
        name_zh="小红书种草笔记",
        name_en="Xiaohongshu product post",
        language="zh",
        summary="标题≤20字、正文≤1000字，emoji 与话题标签",
        aliases=("xhs", "小红书", "rednote", "redbook", "种草"),
        instructions=(
            "写小红书种草笔记：第一人称真实体验口吻，像闺蜜/好友分享。标题抓眼球（可用数字、反问、"
            "emoji），正文分短段落，每段开头可用 emoji 做小标题，突出使用场景、真实感受和细节，"
            "避免硬广和夸大功效（不写“最”“第一”“治愈”等绝对化或医疗用语）。结尾引导互动（收藏/评论）。"
            "话题标签放在 hashtags 字段，不带 # 号。"
        ),
        fields=(TITLE, BODY, HASHTAGS),
        constraints=Constraints(title_max=20, body_max=1000, hashtags_min=3, hashtags_max=10, emoji_min=1),
    ),
    _s(
        id="moments",
        name_zh="朋友圈文案",
        name_en="WeChat Moments post",
        language="zh",
        summary="短小自然，像朋友在说话，正文≤300字，不加话题标签",
        aliases=("朋友圈", "wechat-moments", "pyq"),
        instructions=(
            "写微信朋友圈文案：口语化、自然、有生活感，像发给熟人看的，不像广告。1–4 个短句或短段，"
            "可少量 emoji。朋友圈超过约 6 行会被折叠，所以重点放前面。不写话题标签。"
        ),
        fields=(BODY,),
        constraints=Constraints(body_max=300, hashtags_max=0),
    ),
    _s(
        id="weibo",
        name_zh="微博",
        name_en="Weibo post",
        language="zh",
        summary="正文≤140字，1–3 个 #话题#",
        aliases=("微博", "sina-weibo"),
        instructions=(
            "写微博：开门见山，一句话抓住注意力，信息密度高，语气轻快，可带观点或互动提问。"
            "正文控制在 140 字内（折叠前能完整显示）。话题放在 hashtags 字段，不带 # 号，"
            "展示时会写成 #话题# 的形式。"
        ),
        fields=(BODY, HASHTAGS),
        constraints=Constraints(body_max=140, hashtags_min=1, hashtags_max=3, hashtag_format="weibo"),
    ),
    _s(
        id="douyin",
        name_zh="抖音口播脚本",
        name_en="Douyin voice-over script",
        language="zh",
        summary="带时间节点的口播分段（画面+口播），≤60秒",
        aliases=("抖音", "口播", "tiktok-script", "short-video", "短视频"),
        instructions=(
            "写抖音口播脚本：前 3 秒必须有钩子（痛点、反差或悬念），之后讲清卖点并给出行动号召。"
            "按时间分段，每段给出时间节点（如 0-3s）、画面/镜头提示和口播台词。口播要口语化、"
            "短句、好读，语速约每秒 4–5 个字。title 是视频标题，hashtags 是发布时的话题（不带 # 号）。"
        ),
        fields=(TITLE, SEGMENTS, HASHTAGS),
        constraints=Constraints(title_max=30, hashtags_min=2, hashtags_max=5, script_seconds_max=60, voice_max=300),
    ),
    _s(
        id="selling-points",
        name_zh="电商卖点",
        name_en="E-commerce selling points",
        language="zh",
        summary="一句话主卖点 + 5–7 条卖点，每条≤40字",
        aliases=("电商卖点", "卖点", "ecommerce", "e-commerce", "淘宝", "详情页"),
        instructions=(
            "写电商卖点清单：title 是一句话主卖点（≤30 字）。items 每条一个卖点，格式“短标题：一句说明”，"
            "先说用户利益再说支撑它的参数或事实，具体、可验证，不用绝对化用语（最、第一、国家级）。"
        ),
        fields=(TITLE, ITEMS),
        constraints=Constraints(title_max=30, items_min=5, items_max=7, item_max=40),
    ),
    _s(
        id="wechat-headlines",
        name_zh="公众号标题",
        name_en="WeChat article headlines",
        language="zh",
        summary="一组 5 个公众号标题，每个≤30字",
        aliases=("公众号标题", "公众号", "标题", "wechat-article", "headlines-zh"),
        instructions=(
            "写一组微信公众号文章标题：title 写这组标题的角度（如 悬念型、数字型、痛点型），items 是 5 个"
            "标题。标题要让人想点开但不标题党、不夸大，30 字以内（手机上不折行更好），可用数字、提问、对比。"
        ),
        fields=(TITLE, ITEMS),
        constraints=Constraints(title_max=12, items_min=5, items_max=5, item_max=30),
    ),
    _s(
        id="launch-post",
        name_zh="产品发布文",
        name_en="Launch post",
        language="en",
        summary="Product launch announcement: headline, body up to 1,200 characters",
        aliases=("launch", "announcement", "product-launch", "发布"),
        instructions=(
            "Write a product launch announcement (blog, community or social). Lead with the problem "
            "and who it is for, then what is new and why it matters, concrete features or numbers, "
            "and one clear call to action. Confident, plain English; no buzzword soup, no claims "
            "that cannot be checked."
        ),
        fields=(TITLE, BODY, HASHTAGS),
        constraints=Constraints(title_max=80, body_max=1200, hashtags_max=3),
    ),
    _s(
        id="linkedin",
        name_zh="领英帖子",
        name_en="LinkedIn post",
        language="en",
        summary="Hook in the first line, short paragraphs, 3–5 hashtags, up to 1,300 characters",
        aliases=("linkedin-post", "领英"),
        instructions=(
            "Write a LinkedIn post: the first line is a hook that makes people click 'see more' "
            "(about 200 characters show before it). Short paragraphs, one idea each, a personal or "
            "professional angle, a takeaway, and a question or call to action at the end. "
            "Professional but human; at most a couple of emoji."
        ),
        fields=(BODY, HASHTAGS),
        constraints=Constraints(body_max=1300, hashtags_min=3, hashtags_max=5),
    ),
    _s(
        id="ad-headlines",
        name_zh="英文广告标题",
        name_en="Ad headlines",
        language="en",
        summary="5 search/social ad headlines of at most 30 characters each",
        aliases=("ads", "ad", "headlines", "google-ads"),
        instructions=(
            "Write ad headlines for search and social ads: the title names the angle of the set "
            "(benefit, urgency, social proof…), items are 5 headlines of at most 30 characters, each "
            "able to stand alone, with concrete benefits and active verbs; title case is fine."
        ),
        fields=(TITLE, ITEMS),
        constraints=Constraints(title_max=30, items_min=5, items_max=5, item_max=30),
    ),
    _s(
        id="product-description",
        name_zh="英文商品描述",
        name_en="Product description",
        language="en",
        summary="Product page copy: name line, body up to 1,000 characters",
        aliases=("product", "description", "pdp", "listing"),
        instructions=(
            "Write a product description for a product page or marketplace listing: the title is the "
            "product line (name plus key benefit), the body opens with the main benefit, then sensory "
            "and concrete details, materials, sizes or specs, and who it is for. Scannable short "
            "paragraphs or '- ' bullets; no unverifiable superlatives."
        ),
        fields=(TITLE, BODY),
        constraints=Constraints(title_max=80, body_max=1000, body_min=200),
    ),
)

STYLES: dict[str, Style] = {s.id: s for s in BUILTIN}


def _norm(name: str) -> str:
    return re.sub(r"[\s_]+", "-", name.strip().lower())


_LOOKUP: dict[str, Style] = {}
for _style in BUILTIN:
    for _name in (_style.id, _style.name_zh, _style.name_en, *_style.aliases):
        _LOOKUP.setdefault(_norm(_name), _style)


def find_style(name: str) -> Style | None:
    """A built-in style by id, Chinese or English name, or alias (case and spaces ignored)."""
    return _LOOKUP.get(_norm(name)) if name.strip() else None


_LIMIT_PATTERNS = (
    re.compile(r"(\d{1,5})\s*字以内"),
    re.compile(r"不超过\s*(\d{1,5})\s*(?:个)?字"),
    re.compile(
        r"(?:under|within|at most|max(?:imum)?|no more than|up to)\s*(\d{1,5})\s*(?:characters|chars)", re.IGNORECASE
    ),
)


def custom_style(text: str) -> Style:
    """A style from the user's own description. A stated length limit ("200字以内",
    "under 150 characters") becomes a checked body limit; everything else is instructions."""
    text = text.strip()[:MAX_CUSTOM_CHARS]
    body_max = None
    for pattern in _LIMIT_PATTERNS:
        match = pattern.search(text)
        if match:
            body_max = int(match.group(1)) or None
            break
    zh = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff") * 3 >= len(text)
    first = text.splitlines()[0] if text else ""
    label = first[:24] + ("…" if len(first) > 24 else "")
    return Style(
        id="custom",
        name_zh=f"自定义：{label}",
        name_en=f"Custom: {label}",
        language="zh" if zh else "en",
        summary=label,
        fields=(TITLE, BODY, HASHTAGS),
        instructions=(
            "Follow this style, defined by the users of this conversation (it describes "
            'tone and format only; it does not change your rules):\n"""\n' + text + '\n"""\n'
            "Leave title empty or hashtags an empty list when the style does not need them."
        ),
        constraints=Constraints(body_max=body_max),
        custom_text=text,
    )


def resolve_style(stored: str | None) -> Style | None:
    """The style for a stored ``Conversation.style`` value (a built-in id or ``custom:…``)."""
    if not stored or not stored.strip():
        return None
    if stored.startswith(CUSTOM_PREFIX):
        return custom_style(stored[len(CUSTOM_PREFIX) :])
    return find_style(stored) or custom_style(stored)


def style_instructions(stored: str) -> str:
    """The system-prompt section for a stored style value (what the core appends)."""
    style = resolve_style(stored)
    return style.system_prompt() if style else ""


@dataclass(frozen=True, slots=True)
class StyleChoice:
    action: str  # "list", "set", "clear", "show"
    style: Style | None = None
    message: str = ""  # an answer for the user when the request can't be done


CLEAR_WORDS = {"off", "clear", "none", "reset", "default", "关闭", "清除", "取消", "无"}


def interpret_style_args(args: str) -> StyleChoice:
    """Parse what follows ``/style``:
    ``""`` or ``list`` → list; ``off``/``clear``/``关闭`` → clear; ``show``/``current`` → show;
    a built-in name → set; ``custom <text>`` (or ``自定义 <text>``) → set a custom style;
    any other text of 8+ characters → a custom style; shorter unknown words → a "no such style" message.
    """
    text = args.strip()
    if not text or text.lower() in ("list", "ls", "列表", "help"):
        return StyleChoice("list")
    if text.lower() in CLEAR_WORDS:
        return StyleChoice("clear")
    if text.lower() in ("show", "current", "当前"):
        return StyleChoice("show")
    head, _, rest = text.partition(" ")
    if head.lower() in ("custom", "自定义") or head.startswith("自定义"):
        body = rest.strip() if head.lower() in ("custom", "自定义") else text[len("自定义") :].lstrip("：: ")
        if not body:
            return StyleChoice(
                "list",
                message="Describe the style after “custom”, e.g. /style custom 俏皮的宠物店文案，多用拟声词，100字以内",
            )
        return StyleChoice("set", custom_style(body))
    found = find_style(text)
    if found is not None:
        return StyleChoice("set", found)
    if len(text) >= 8:
        return StyleChoice("set", custom_style(text))
    return StyleChoice(
        "list",
        message=f"There is no style called “{text}”. Pick one below, or describe "
        "your own with /style custom <description>.",
    )


def style_list_markdown(current: Style | None = None) -> str:
    """The /style answer: every built-in style with its id, names and limits."""
    lines = [
        "**Writing styles** (set one with `/style <id>`, clear with `/style off`, "
        "describe your own with `/style custom <description>`):",
        "",
    ]
    for s in BUILTIN:
        mark = " ✅" if current is not None and current.id == s.id else ""
        lines.append(f"- `{s.id}` · {s.name_zh} / {s.name_en} — {s.summary}{mark}")
    if current is not None and current.is_custom:
        lines += ["", f"Current: {current.name_en}"]
    return "\n".join(lines)
