"""Building the reasoner a process serves, named by `AUTOGLM_REASONER`.

Why apart from `reasoning.reasoner`: the implementations import the `Reasoned` type, and
the loader imports the implementations; in one file they formed an import cycle.
"""

from __future__ import annotations

from reasoning.reasoner import Reasoner
from schemas.settings import Settings


def load_reasoner(settings: Settings) -> Reasoner:
    """Build the reasoner named by `AUTOGLM_REASONER` (`baseline` or `gnn`)."""
    if settings.reasoner == "baseline":
        from reasoning.baseline import BaselineReasoner

        return BaselineReasoner.load(settings)
    if settings.reasoner == "gnn":
        from reasoning.gnn.reasoner import GnnReasoner

        return GnnReasoner.load(settings)
    raise ValueError(f"unknown reasoner {settings.reasoner!r}: set AUTOGLM_REASONER to 'baseline' or 'gnn'")


def load_for_serving(settings: Settings) -> Reasoner:
    """`load_reasoner`, then wait for any model it loads in the background (the question
    encoder). Why: `autoglm ask`/`eval` start at once and answer known templates from the
    cache meanwhile, but a worker that joined its group while importing transformers held
    the GIL for seconds mid-stream (seen in a profile under load as 27 % of the worker's
    time and multi-second latency spikes); a worker is ready when its models are.
    """
    reasoner = load_reasoner(settings)
    wait_loaded = getattr(reasoner, "wait_loaded", None)
    if wait_loaded is not None:
        wait_loaded()
    return reasoner
