"""The most-asked questions in a room, for the host: recent comments that are questions, grouped when they
ask the same thing in other words, ranked by how many different neighbours asked.

What counts as a question (``is_question``), on the comment's NFKC form (so full-width ``？`` is ``?``):

- it holds a question mark; or
- it holds an interrogative word or pattern: 吗 么 嘛, 多少 几 (not 几乎), 怎么 怎样 咋 如何, 什么 啥,
  哪 (哪里, 哪天, 哪个), 为什么 为啥, 能不能 可不可以 有没有 是不是 会不会 要不要 A不A-style pairs
  listed in ``_MARKERS``, 请问; or it ends with 呢; or
- it starts with an English question word (how, what, when, where, why, which, who, can, could, is, are,
  do, does, did, will, any).

The host's and operators' own comments and the host's replies are not questions from the audience and are
left out; deleted comments too. A short false positive costs the host a glance; a missed question costs
an unanswered neighbour, so the net is wide.

Grouping (``group_questions``): each question is reduced to a key — lower case, letters and digits only,
polite openers (请问, 主播, 老师 …) and trailing particles (啊 呀 呢 吧 …) dropped — and joins the
group whose first key is most similar, if similar enough (``similarity`` ≥ ``SIMILAR``: rapidfuzz's
normalised Indel ratio over characters, which suits Chinese without word breaks — "青团还有吗" and
"青团还有货吗" are one question, "青团还有吗" and "艾草团还有吗" two); otherwise it starts a group.
A group's representative is its first question: the one a host's answer is attached to.

Ranking: unanswered groups first, then by distinct askers, then by how often it was asked, then by the
latest ask — one neighbour repeating a question ten times does not outrank three neighbours asking once.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rapidfuzz import fuzz, process
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from linli.core.clock import utcnow
from linli.identity.models import Role, User, UserRole
from linli.live.models import Comment, LiveSession

# Similarity (0–100) from which two questions are the same question.
SIMILAR = 75.0
DEFAULT_WINDOW_MINUTES = 30
MAX_WINDOW_MINUTES = 240
# The most recent comments looked at, however busy the room: grouping is O(questions × groups).
MAX_SCANNED = 2000
MAX_SAMPLES = 3

_MARKERS = (
    "吗",
    "么",
    "嘛",
    "多少",
    "怎么",
    "怎样",
    "咋",
    "如何",
    "什么",
    "啥",
    "哪",
    "为什么",
    "为啥",
    "能不能",
    "可不可以",
    "可以吗",
    "有没有",
    "是不是",
    "会不会",
    "要不要",
    "够不够",
    "好不好",
    "请问",
)
_JI = re.compile(r"几(?!乎)")
_ENGLISH = re.compile(r"^(how|what|when|where|why|which|who|can|could|is|are|do|does|did|will|any)\b")
_OPENERS = re.compile(r"^(请问一下|请问|主播|老师|您好|你好|哈喽|亲爱的|亲|姐姐|小姐姐|问一下|想问下|想问)+")
_PARTICLES = re.compile(r"(啊|呀|呢|吧|哈|哦|噢|嘛|啦|呐|哇)+$")


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().lower()


def is_question(text: str) -> bool:
    """Whether a comment asks something (see the module's docstring for the heuristic)."""
    form = _nfkc(text)
    if not form:
        return False
    if "?" in form or _JI.search(form) or _ENGLISH.match(form):
        return True
    if any(marker in form for marker in _MARKERS):
        return True
    bare = "".join(ch for ch in form if ch.isalnum())
    return bare.endswith("呢")


def question_key(text: str) -> str:
    """The question reduced to what it asks: letters and digits, without openers and trailing particles."""
    bare = "".join(ch for ch in _nfkc(text) if ch.isalnum())
    stripped = _PARTICLES.sub("", _OPENERS.sub("", bare))
    return stripped or bare


def similarity(a: str, b: str) -> float:
    """How alike two question keys are, 0–100."""
    if not a or not b:
        return 0.0
    return float(fuzz.ratio(a, b))


@dataclass(frozen=True)
class Asked:
    """One question comment, as the grouping needs it."""

    comment_id: int
    user_id: int
    user_name: str
    text: str
    at: datetime


@dataclass
class QuestionGroup:
    """Questions asking the same thing; ``representative`` is the first of them."""

    key: str
    representative: Asked
    comment_ids: list[int] = field(default_factory=list)
    asker_ids: set[int] = field(default_factory=set)
    samples: list[str] = field(default_factory=list)
    last_at: datetime | None = None
    answered: bool = False

    @property
    def askers(self) -> int:
        return len(self.asker_ids)

    @property
    def count(self) -> int:
        return len(self.comment_ids)

    def add(self, asked: Asked) -> None:
        self.comment_ids.append(asked.comment_id)
        self.asker_ids.add(asked.user_id)
        if len(self.samples) < MAX_SAMPLES and asked.text not in self.samples:
            self.samples.append(asked.text)
        if self.last_at is None or asked.at > self.last_at:
            self.last_at = asked.at


def rank(groups: Iterable[QuestionGroup]) -> list[QuestionGroup]:
    """Unanswered first, then most distinct askers, most asks, latest ask."""
    return sorted(
        groups,
        key=lambda g: (
            g.answered,
            -g.askers,
            -g.count,
            -(g.last_at.timestamp() if g.last_at else 0.0),
            g.representative.comment_id,
        ),
    )


def group_questions(asked: Sequence[Asked], *, answered_ids: Iterable[int] = ()) -> list[QuestionGroup]:
    """Group question comments (oldest first) by similarity and rank the groups (see the module's
    docstring). A group is answered when any of its comments got a host reply (``answered_ids``)."""
    groups: list[QuestionGroup] = []
    keys: list[str] = []  # groups[i].key, for rapidfuzz's batch scoring
    exact: dict[str, QuestionGroup] = {}
    for item in sorted(asked, key=lambda a: (a.at, a.comment_id)):
        key = question_key(item.text)
        best = exact.get(key)
        if best is None and keys:
            found = process.extractOne(key, keys, scorer=fuzz.ratio, score_cutoff=SIMILAR)
            if found is not None:
                best = groups[found[2]]
        if best is None:
            best = QuestionGroup(key=key, representative=item)
            groups.append(best)
            keys.append(key)
        exact.setdefault(key, best)
        best.add(item)
    replied = set(answered_ids)
    for group in groups:
        group.answered = not replied.isdisjoint(group.comment_ids)
    return rank(groups)


async def most_asked(
    session: AsyncSession,
    live_session: LiveSession,
    *,
    minutes: int = DEFAULT_WINDOW_MINUTES,
    limit: int = 10,
    now: datetime | None = None,
) -> list[QuestionGroup]:
    """The room's most-asked questions of the last ``minutes`` (at most ``MAX_SCANNED`` recent comments),
    ranked; read only. The caller checks that the user may moderate the room."""
    now = now or utcnow()
    since = now - timedelta(minutes=max(1, min(minutes, MAX_WINDOW_MINUTES)))
    # Identity's role table, read only: the host's and operators' own comments are not audience questions.
    staff = exists().where(
        UserRole.user_id == Comment.user_id, UserRole.role.in_([Role.host.value, Role.operator.value])
    )
    rows = (
        await session.execute(
            select(Comment.id, Comment.user_id, Comment.text, Comment.created_at, User.nickname, User.phone)
            .join(User, User.id == Comment.user_id)
            .where(
                Comment.session_id == live_session.id,
                Comment.deleted_at.is_(None),
                Comment.reply_to_id.is_(None),
                Comment.created_at >= since,
                Comment.user_id != (live_session.host_id or 0),
                ~staff,
            )
            .order_by(Comment.id.desc())
            .limit(MAX_SCANNED)
        )
    ).all()
    asked = [
        Asked(
            comment_id=r.id,
            user_id=r.user_id,
            user_name=r.nickname or f"邻居{r.phone[-4:]}",
            text=r.text,
            at=r.created_at,
        )
        for r in rows
        if is_question(r.text)
    ]
    if not asked:
        return []
    ids = [a.comment_id for a in asked]
    answered = (
        await session.scalars(
            select(Comment.reply_to_id).where(
                Comment.session_id == live_session.id,
                Comment.deleted_at.is_(None),
                Comment.reply_to_id.in_(ids),
            )
        )
    ).all()
    return group_questions(asked, answered_ids=[i for i in answered if i is not None])[:limit]
