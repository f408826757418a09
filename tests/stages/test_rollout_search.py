"""The rollout judge's search logic against a scripted policy whose recoverable prefixes are known."""

import re

import pytest

from stepdpo.generation import Completion
from stepdpo.records import Solution
from stepdpo.stages.locate.rollout import RolloutJudge


class ScriptedPolicy:
    """Reaches the answer from prefix i iff i < first_error[problem]; a success reproduces the
    solution's own next steps up to the error when ``copy`` is set. ``unsolvable`` problems fail."""

    model_name = "scripted"
    tokenizer = None

    def __init__(self, solutions, first_error, copy=False, unsolvable=()):
        self.by_problem = {s.problem: s for s in solutions}
        self.first_error, self.copy, self.unsolvable = first_error, copy, set(unsolvable)
        self.rollouts = 0

    def generate(self, prompts, sampling):
        out = []
        for p in prompts:
            problem = re.search(r"### Instruction:\n(.*?)\n\n### Response", p, re.S).group(1)
            sol = self.by_problem[problem]
            i = int(re.search(r"Step (\d+):$", p).group(1)) - 1  # prior steps
            self.rollouts += sampling.n
            k = self.first_error[problem]
            ok = problem not in self.unsolvable and i < k
            if ok and self.copy and i < k - 1:
                body = (
                    "".join(sol.steps[i : k - 1]).split(":", 1)[1]
                    + f"Step {k}: fixed.\nThe answer is \\boxed{{{sol.answer}}}."
                )
            else:
                body = f" fixed.\nThe answer is \\boxed{{{sol.answer if ok else 'no'}}}."
            out.append([Completion(body, 5, "eos") for _ in range(sampling.n)])
        return out


def _solutions(n_steps, count=12):
    sols = []
    for j in range(count):
        steps = [f"Step {t}: line {t} of {j}\n" for t in range(1, n_steps + 1)]
        sols.append(
            Solution(
                id=f"s{j}",
                problem_id=f"p{j}",
                problem=f"Problem {j}?",
                answer="7",
                completion="".join(steps),
                steps=steps,
                correct=False,
            )
        )
    return sols


@pytest.mark.parametrize("search", ["binary", "linear", "full"])
def test_every_search_finds_the_first_error(search):
    sols = _solutions(8)
    truth = {s.problem: 1 + (j * 3) % 8 for j, s in enumerate(sols)}
    judge = RolloutJudge(ScriptedPolicy(sols, truth), m=4, search=search, abstain=False, reuse=False)
    found = judge.locate(sols)
    assert [e.first_error_step for e in found] == [truth[s.problem] for s in sols]


def test_binary_search_spends_log_n_checks_and_linear_k():
    sols = _solutions(16, count=1)
    truth = {sols[0].problem: 14}
    costs = {}
    for search in ("binary", "linear"):
        judge = RolloutJudge(
            ScriptedPolicy(sols, truth), m=4, search=search, abstain=False, reuse=False, early_stop=False
        )
        (err,) = judge.locate(sols)
        assert err.first_error_step == 14
        costs[search] = err.evidence["rollouts"]
    assert costs["binary"] == 4 * 4  # log2(16) checks of m = 4
    assert costs["linear"] == 14 * 4  # prefixes 1..14


def test_abstains_when_the_policy_never_solves_the_problem():
    sols = _solutions(4, count=3)
    policy = ScriptedPolicy(sols, {s.problem: 2 for s in sols}, unsolvable={sols[1].problem})
    found = RolloutJudge(policy, m=4).locate(sols)
    assert [e.first_error_step for e in found] == [2, None, 2]
    assert found[1].reason == "unsolvable_by_policy" and found[1].evidence["root_rollouts"] == 4
    assert found[1].evidence["rollouts"] == 0  # no search: the problem's R(0) check said it all


def test_a_located_record_is_the_same_however_the_solutions_are_chunked():
    """The R(0) check is shared within a call: its cost is named in each record of the problem
    (root_rollouts), never charged to whichever solution came first in a chunk."""
    from dataclasses import replace

    sols = _solutions(8, count=3)
    sols = [sols[0], replace(sols[0], id="s0-again"), *sols[1:]]  # two wrong solutions of one problem
    policy = ScriptedPolicy(sols, {s.problem: 3 for s in sols})
    together = [e.to_dict() for e in RolloutJudge(policy, m=4).locate(sols)]
    apart = [e.to_dict() for s in sols for e in RolloutJudge(policy, m=4).locate([s])]
    assert together == apart
    assert len({e["evidence"]["root_rollouts"] for e in together}) == 1 and together[0]["evidence"]["root_rollouts"] > 0


def test_reused_rollouts_skip_ahead():
    sols = _solutions(16, count=1)
    truth = {sols[0].problem: 14}
    spent = {}
    for reuse in (False, True):
        policy = ScriptedPolicy(sols, truth, copy=True)
        (err,) = RolloutJudge(policy, m=4, search="linear", abstain=False, reuse=reuse, early_stop=False).locate(sols)
        assert err.first_error_step == 14
        spent[reuse] = err.evidence["rollouts"]
    assert spent[True] < spent[False]


def test_binary_search_checks_where_a_reproducing_success_diverged():
    sols = _solutions(32, count=1)
    truth = {sols[0].problem: 20}
    policy = ScriptedPolicy(sols, truth, copy=True)
    (err,) = RolloutJudge(policy, m=4, search="binary", abstain=False, reuse=True, early_stop=False).locate(sols)
    assert err.first_error_step == 20
    # prefix 16 succeeds reproducing steps 17..19, so step 20 is checked next and fails: two checks
    assert err.evidence["rollouts"] == 2 * 4 and sorted(err.evidence["successes_after_prefix"]) == ["16", "20"]


@pytest.mark.parametrize("search", ["binary", "linear"])
def test_a_reproducing_success_from_the_bare_problem_starts_the_search(search):
    sols = _solutions(32, count=1)
    truth = {sols[0].problem: 20}
    spent = {}
    for reuse in (False, True):
        policy = ScriptedPolicy(sols, truth, copy=True)
        (err,) = RolloutJudge(policy, m=4, search=search, reuse=reuse, early_stop=False).locate(sols)
        assert err.first_error_step == 20
        spent[reuse] = err.evidence["rollouts"] + err.evidence["root_rollouts"]
    # R(0) succeeds reproducing steps 1..19, so only step 20 is checked: two checks in all
    assert spent[True] == 2 * 4 and spent[False] > spent[True]
