"""One readable sentence per answer: `Ginger Rogers acted in: Top Hat, Swing Time and 40 more`.

The phrases read from the subject's side of each relation; relations of another KB that are
not listed fall back to their own name with spaces.
"""

from __future__ import annotations

from collections.abc import Sequence

from reasoning.kb import INVERSE_SUFFIX

PHRASES: dict[str, str] = {
    "starred_actors": "stars",
    "starred_actors_inv": "acted in",
    "directed_by": "was directed by",
    "directed_by_inv": "directed",
    "written_by": "was written by",
    "written_by_inv": "wrote",
    "has_genre": "has the genre",
    "has_genre_inv": "is the genre of",
    "has_tags": "is tagged",
    "has_tags_inv": "is a tag of",
    "in_language": "is in",
    "in_language_inv": "is the language of",
    "release_year": "was released in",
    "release_year_inv": "is the release year of",
    "has_imdb_rating": "is rated",
    "has_imdb_rating_inv": "is the IMDb rating of",
    "has_imdb_votes": "has IMDb votes",
    "has_imdb_votes_inv": "is the IMDb vote level of",
}
SHOWN = 5  # answers named in the sentence; the rest are counted


def phrase(relation: str) -> str:
    """How a relation reads after its subject."""
    if relation in PHRASES:
        return PHRASES[relation]
    if relation.endswith(INVERSE_SUFFIX):
        return f"is {relation[: -len(INVERSE_SUFFIX)].replace('_', ' ')} of"
    return relation.replace("_", " ")


def sentence(topic: str, relations: Sequence[str], answers: Sequence[str]) -> str:
    """`topic p1 → p2: a, b, c and N more` (a one-hop path reads as plain English)."""
    chain = " → ".join(phrase(r) for r in relations)
    if not answers:
        return f"{topic} {chain}: nothing in the knowledge base."
    named = ", ".join(answers[:SHOWN])
    more = f" and {len(answers) - SHOWN} more" if len(answers) > SHOWN else ""
    return f"{topic} {chain}: {named}{more}"
