from stepdpo.grading import grade
from stepdpo.steps import split_steps
from stepdpo.tasks.arithmetic import (canonical_solution, canonical_step, check_solution, generate_problems,
                                      running_values)


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
