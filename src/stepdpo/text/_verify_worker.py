"""The math-verify worker behind :mod:`stepdpo.text.grading`: reads ``[gold, pred]`` JSON lines on
stdin, writes ``[correct, reason]`` lines on stdout. Runs in its own process so that the parent can
kill it when a check exceeds its time limit."""

import json
import os
import sys


def main() -> None:
    from math_verify import parse, verify

    sys.stdout.write("ready\n")
    sys.stdout.flush()
    # started: from here on, library warnings are dropped rather than piling up where nobody reads them
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)

    for line in sys.stdin:
        gold, pred = json.loads(line)
        try:
            g = parse(f"${gold}$", parsing_timeout=None)
            p = parse(f"${pred}$", parsing_timeout=None)
            if not g:
                out = [False, "unparsable_reference"]
            elif not p:
                out = [False, "unparsable_answer"]
            else:
                ok = bool(verify(g, p, timeout_seconds=None))
                out = [ok, "" if ok else "wrong"]
        except Exception as e:  # sympy and the LaTeX parser raise many types on odd input
            out = [False, f"verify_error: {type(e).__name__}"]
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
