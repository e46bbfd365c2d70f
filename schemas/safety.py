"""Safety rules: what questions are refused and what answers may not say (pure, no I/O).

Rules are data (settings or a JSON file), so operators change them without a deploy.
A rule that fires names itself in the answer's `reason` and in the logs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field

from schemas.settings import Settings

DEFAULT_PATTERNS: dict[str, str] = {
    # Prompt-injection phrasing: this system answers from a KB, never follows instructions.
    "prompt_injection": r"\b(ignore|disregard|forget)\b.{0,40}\b(previous|prior|above|all)\b.{0,40}\b(instructions?|prompts?|rules?)\b",
    "system_prompt_probe": r"\b(reveal|print|show)\b.{0,30}\b(system prompt|hidden instructions?)\b",
    "sql_injection": r"(;\s*(drop|delete|truncate|alter)\s+(table|database)\b)|(\bunion\s+select\b)|('\s*or\s+'?1'?\s*=\s*'?1)",
}


class SafetyRules(BaseModel):
    """Blocked keywords (whole words, case-insensitive), topics and regex patterns."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    blocked_keywords: list[str] = Field(default_factory=list)
    blocked_topics: dict[str, list[str]] = Field(default_factory=dict)  # topic -> trigger words
    blocked_patterns: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_PATTERNS))
    blocked_answer_keywords: list[str] = Field(default_factory=list)
    max_answer_chars: int = 512

    @cached_property
    def _compiled(self) -> list[tuple[str, re.Pattern[str]]]:
        rules: list[tuple[str, re.Pattern[str]]] = []
        for word in self.blocked_keywords:
            rules.append((f"keyword:{word}", _word(word)))
        for topic, words in self.blocked_topics.items():
            rules.append((f"topic:{topic}", re.compile("|".join(_word(w).pattern for w in words), re.I)))
        for name, pattern in self.blocked_patterns.items():
            rules.append((f"pattern:{name}", re.compile(pattern, re.I | re.S)))
        return rules

    @cached_property
    def _answer_words(self) -> list[tuple[str, re.Pattern[str]]]:
        return [(f"answer_keyword:{w}", _word(w)) for w in self.blocked_answer_keywords]

    def check_question(self, text: str) -> RuleHit | None:
        """The first input rule that fires on `text`, or None."""
        for name, rx in self._compiled:
            if rx.search(text):
                return RuleHit(rule=name, reason=f"question blocked by safety rule {name}")
        return None

    def check_answer(self, entities: list[str], sentence: str | None) -> RuleHit | None:
        """The first output rule an answer breaks, or None."""
        for entity in entities:
            if not entity.strip() or len(entity) > self.max_answer_chars:
                return RuleHit(rule="output:malformed_entity", reason="answer withheld: malformed answer entity")
        text = " ".join(entities) + " " + (sentence or "")
        for name, rx in self._answer_words:
            if rx.search(text):
                return RuleHit(rule=name, reason=f"answer withheld by output rule {name}")
        return None


def _word(word: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){re.escape(word)}(?!\w)", re.I)


@dataclass(frozen=True)
class RuleHit:
    """Which rule fired and the reason given to the user."""

    rule: str
    reason: str


def rules_from_settings(settings: Settings) -> SafetyRules:
    """`AUTOGLM_SAFETY_RULES_FILE` (JSON of SafetyRules) when set, else the defaults.

    Configuration, read once at start like the settings themselves."""
    if settings.safety_rules_file is None:
        return SafetyRules()
    try:
        return SafetyRules.model_validate_json(settings.safety_rules_file.read_bytes())
    except OSError as exc:
        raise RuntimeError(f"cannot read AUTOGLM_SAFETY_RULES_FILE {settings.safety_rules_file}: {exc}") from exc
