import pytest

from stepdpo.tasks.arithmetic import (
    EQUATION,
    canonical_solution,
    canonical_step,
    check_solution,
    generate_chain_problems,
    generate_problems,
    running_values,
    slipped_demonstrations,
    slipped_solution,
)
from stepdpo.text.grading import grade
from stepdpo.text.steps import split_steps


def test_problems_are_deterministic_and_well_formed():
    a, b = generate_problems(50, seed=3), generate_problems(50, seed=3)
    assert [p.to_dict() for p in a] == [p.to_dict() for p in b]
    for p in a:
        assert 3 <= len(p.meta["ops"]) <= 6
        assert all(0 < v < 1000 for v in running_values(p.meta))
        assert grade(p.solution, p.answer)
        assert len(split_steps(p.solution)[1]) == len(p.meta["ops"])
        assert check_solution(p, p.solution).first_error_step is None
        assert check_solution(p, canonical_solution(p, style="solver")).first_error_step is None
    held = generate_problems(50, seed=4, exclude={p.problem for p in a})
    assert not {p.problem for p in held} & {p.problem for p in a}


def _problem():
    return next(p for p in generate_problems(200, seed=9) if len(p.meta["ops"]) == 4)


def test_checker_finds_the_first_wrong_step():
    p = _problem()
    steps = [canonical_step(p, k) for k in range(1, 5)]
    vals = running_values(p.meta)
    # an arithmetic slip in step 2, carried forward consistently
    wrong2 = steps[1].replace(f"= {vals[2]} ", f"= {vals[2] + 1} ")
    assert check_solution(p, steps[0] + wrong2 + steps[2] + steps[3]).first_error_step == 2
    # a wrong operand in step 3
    op, b = p.meta["ops"][2]
    bad3 = steps[2].replace(f"{vals[2]} {op} {b}", f"{vals[2]} {op} {b + 1}")
    r = check_solution(p, "".join(steps[:2]) + bad3 + steps[3])
    assert r.first_error_step == 3
    # stops early with a boxed answer
    r = check_solution(p, "".join(steps[:2]) + "The answer is \\boxed{1}.")
    assert r.first_error_step == 2
    # right steps, wrong final answer
    r = check_solution(p, "".join(steps[:3]) + steps[3].replace(f"\\boxed{{{vals[4]}}}", "\\boxed{0}"))
    assert r.first_error_step == 4
    # an extra step
    assert check_solution(p, "".join(steps) + "\nStep 5: 1 + 1 = 2.").first_error_step == 5
    assert check_solution(p, "Step 1: I do not know.").first_error_step == 1


def test_a_slipped_step_is_carried_forward_as_written():
    p = _problem()
    vals = running_values(p.meta)
    steps = next(s for s in (slipped_solution(p, 2, d) for d in (1, 2, 3, -1, -2, 10)) if s is not None)
    text = "".join(steps)
    assert steps[0] == canonical_step(p, 1)
    assert check_solution(p, text).first_error_step == 2
    written = [int(EQUATION.search(s).group(4)) for s in steps]
    assert written[1] != vals[2]
    for k in range(2, 4):  # every later step computes on the value the step before it wrote
        x, _, b, y = EQUATION.search(steps[k]).groups()
        assert int(x) == written[k - 1] or int(b) == written[k - 1]
        assert (
            int(y)
            == {"+": int(x) + int(b), "-": int(x) - int(b), "*": int(x) * int(b), "/": int(x) // int(b)}[
                p.meta["ops"][k][0]
            ]
        )
    assert not grade(text, p.answer) and grade(text, str(written[-1]))
    assert slipped_solution(p, 4, 1) is not None  # a slip in the last step has nothing after it
    with pytest.raises(ValueError):
        slipped_solution(p, 2, 0)


def test_a_slip_before_an_inexact_division_is_refused():
    p = next(q for q in generate_problems(300, seed=9) if q.meta["ops"][1][0] == "/" and q.meta["ops"][1][1] > 1)
    assert running_values(p.meta)[1] % p.meta["ops"][1][1] == 0
    assert slipped_solution(p, 1, 1) is None  # one more than a multiple of b does not divide by b


def test_long_chain_problems_are_well_formed_and_checked_like_the_stories():
    a = generate_chain_problems(40, seed=5)
    assert [p.to_dict() for p in a] == [p.to_dict() for p in generate_chain_problems(40, seed=5)]
    for p in a:
        ops, vals = p.meta["ops"], running_values(p.meta)
        assert len(ops) == 20 and vals[0] == 0 and all(1 <= v <= 99 for v in vals[1:])
        assert ops[0][0] == "+" and 10 <= ops[0][1] <= 60 and all(1 <= b <= 9 for _, b in ops[1:])
        lines = p.problem.splitlines()
        (op, b) = ops[11]
        assert lines[0] == f"Start with {vals[0]}." and lines[12] == f" (l) {op}{b}"
        steps = split_steps(p.solution)[1]
        assert len(steps) == len(ops) and steps[11] == f"Step 12: (l) {op}{b}: {vals[11]}{op}{b}={vals[12]}.\n"
        assert grade(p.solution, p.answer) and check_solution(p, p.solution).first_error_step is None
    assert {op for p in a for op, _ in p.meta["ops"][1:]} == {"+", "-"}
    p = a[0]
    steps = split_steps(p.solution)[1]
    vals = running_values(p.meta)
    steps[19] = steps[19].replace(f"={vals[20]}.", f"={vals[20] + 1}.")
    r = check_solution(p, "".join(steps))
    assert r.first_error_step == 20 and r.message.startswith("arithmetic")
    held = generate_chain_problems(40, seed=6, exclude={q.problem for q in a})
    assert not {q.problem for q in held} & {q.problem for q in a}


def test_slipped_demonstrations_put_one_wrong_step_anywhere_in_a_fraction_of_the_solutions():
    problems = generate_chain_problems(600, seed=4)
    texts = slipped_demonstrations(problems, 0.3, seed=0)
    assert texts == slipped_demonstrations(problems, 0.3, seed=0) != slipped_demonstrations(problems, 0.3, seed=1)
    firsts = [check_solution(p, t).first_error_step for p, t in zip(problems, texts)]
    slipped = [(p, t, k) for p, t, k in zip(problems, texts, firsts) if k is not None]
    assert 0.25 < len(slipped) / len(problems) < 0.35
    assert all(t == p.solution for p, t, k in zip(problems, texts, firsts) if k is None)
    assert set(k for _, _, k in slipped) == set(range(1, 21))  # anywhere along the chain
    for p, t, k in slipped:  # one misstated result, carried forward as written: a wrong answer
        steps = split_steps(t)[1]
        assert len(steps) == 20 and steps[: k - 1] == split_steps(p.solution)[1][: k - 1]
        assert check_solution(p, t).message.startswith("arithmetic") and not grade(t, p.answer)
    assert slipped_demonstrations(problems, 0.0) == [p.solution for p in problems]
    with pytest.raises(ValueError):
        slipped_demonstrations(problems, 1.5)


def test_a_step_with_a_false_claim_is_wrong_even_with_the_right_equation():
    from stepdpo.tasks.arithmetic import canonical_solution, check_solution, generate_problems

    p = generate_problems(1, seed=5)[0]
    sol = canonical_solution(p)
    assert check_solution(p, sol).first_error_step is None
    bad = sol.replace("Step 1: ", "Step 1: 2 + 2 = 5, and ", 1)
    res = check_solution(p, bad)
    assert res.first_error_step == 1 and "2 + 2 is not 5" in res.message


def test_the_short_stories_have_one_to_three_operations_and_check_like_the_others():
    from stepdpo.tasks import get_task

    task = get_task("synthetic-short")
    problems = task.problems("test", 60)
    assert {len(p.meta["ops"]) for p in problems} == {1, 2, 3}
    train = {p.problem for p in task.problems("train", 200)}
    assert not train & {p.problem for p in problems}
    for p in problems[:10]:
        assert check_solution(p, p.solution).first_error_step is None
