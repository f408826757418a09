"""Step localization (Sec. 3.2, step 2): find the first wrong step k of each wrong solution (D2).

Three interchangeable judges behind one interface (:class:`~stepdpo.stages.locate.base.Judge`):
``llm`` (an OpenAI-compatible chat model, as GPT-4 in the paper), ``rollout`` (Monte-Carlo
rollouts from the model itself, no external judge) and ``verifier`` (an exact task checker).
"""

from stepdpo.stages.locate.base import (
    Judge,
    LocateConfig,
    judge_from_config,
    locate_chunk,
    make_judge,
)

__all__ = ["Judge", "LocateConfig", "judge_from_config", "locate_chunk", "make_judge"]
