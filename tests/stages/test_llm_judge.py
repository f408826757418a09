"""The llm judge over real HTTP against a local OpenAI-compatible server with scripted replies."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from stepdpo.net import is_local_url
from stepdpo.records import Solution
from stepdpo.stages.locate.llm import LLMJudge, first_error, parse_verdicts

SECRET = "sk-test-secret-value-123"


def _solution(i: int, n_steps: int = 3) -> Solution:
    steps = [f"Step {k}: line {k} of solution {i}\n" for k in range(1, n_steps + 1)]
    return Solution(
        id=f"s{i}",
        problem_id=f"p{i}",
        problem=f"Problem {i}?",
        answer="4",
        completion="".join(steps),
        steps=steps,
        correct=False,
    )


def _verdicts(*vs):
    return json.dumps({"steps": [{"step": i, "verdict": v, "reason": "r"} for i, v in enumerate(vs, 1)]})


class Script:
    """Replies per problem: a list of (status, body or None, delay) consumed in order."""

    def __init__(self, plan):
        self.plan = {k: list(v) for k, v in plan.items()}
        self.calls = []
        self.auth = []
        self.formats = []
        self.lock = threading.Lock()

    def next(self, key):
        with self.lock:
            self.calls.append(key)
            queue = self.plan[key]
            return queue.pop(0) if len(queue) > 1 else queue[0]


def _server(script):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            script.auth.append(self.headers.get("Authorization"))
            script.formats.append(body.get("response_format"))
            user = body["messages"][-1]["content"]
            key = next(k for k in script.plan if f"Problem {k}?" in user)
            status, content, delay = script.next(key)
            time.sleep(delay)
            if status != 200:
                payload = json.dumps({"error": {"message": "scripted", "type": "x"}}).encode()
            else:
                payload = json.dumps(
                    {
                        "id": "c",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                ).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.fixture
def judge_env(monkeypatch):
    monkeypatch.setenv("TEST_JUDGE_KEY", SECRET)


def _judge(srv, tmp_path, **kw):
    opts = dict(
        model="judge-model",
        base_url=f"http://127.0.0.1:{srv.server_port}/v1",
        api_key_env="TEST_JUDGE_KEY",
        concurrency=4,
        max_attempts=3,
        backoff=0.01,
        timeout=2.0,
        cache=tmp_path / "cache.jsonl",
    )
    opts.update(kw)
    return LLMJudge(**opts)


def test_scripted_replies(judge_env, tmp_path):
    script = Script(
        {
            0: [(200, _verdicts("correct", "incorrect", "incorrect"), 0)],  # valid
            1: [(200, "{not json", 0), (200, _verdicts("correct", "correct", "incorrect"), 0)],  # malformed, then ok
            2: [(200, _verdicts("neutral", "incorrect", "correct"), 0)],  # neutral before the wrong step
            3: [(429, None, 0), (429, None, 0), (200, _verdicts("incorrect", "correct", "correct"), 0)],
            4: [(500, None, 0), (200, "```json\n" + _verdicts("correct", "correct", "incorrect") + "\n```", 0)],
            5: [(200, _verdicts("correct", "correct", "incorrect"), 5.0)],  # always too slow
            6: [(200, "I think step 2 is wrong.", 0)],  # never parses
            7: [(200, _verdicts("correct", "bogus", "incorrect"), 0)],  # invalid verdict
        }
    )
    srv = _server(script)
    try:
        judge = _judge(srv, tmp_path)
        out = judge.locate([_solution(i) for i in range(8)])
    finally:
        srv.shutdown()
    ks = [e.first_error_step for e in out]
    assert ks[:5] == [2, 3, 2, 1, 3]  # neutral step 1 is not the error in problem 2
    assert ks[5] is None and out[5].reason == "timeout"
    assert ks[6] is None and out[6].reason.startswith("unparsable_reply")
    assert ks[7] is None and "bogus" in out[7].reason
    assert script.calls.count(3) == 3 and script.calls.count(1) == 2
    assert all(a == f"Bearer {SECRET}" for a in script.auth)
    # the key never reaches an output
    blob = (
        json.dumps([e.to_dict() for e in out]) + json.dumps(judge.settings()) + (tmp_path / "cache.jsonl").read_text()
    )
    assert SECRET not in blob


def test_cache_makes_a_rerun_free(judge_env, tmp_path):
    script = Script(
        {
            0: [(200, _verdicts("correct", "incorrect", "correct"), 0)],
            1: [(200, _verdicts("incorrect", "correct", "correct"), 0)],
        }
    )
    srv = _server(script)
    try:
        first = _judge(srv, tmp_path).locate([_solution(0), _solution(1)])
        calls = len(script.calls)
        again = _judge(srv, tmp_path)
        second = again.locate([_solution(0), _solution(1)])
    finally:
        srv.shutdown()
    assert [e.first_error_step for e in first] == [e.first_error_step for e in second] == [2, 1]
    assert len(script.calls) == calls and again.stats["cache_hits"] == 2


def test_client_errors_are_not_retried(judge_env, tmp_path):
    script = Script({0: [(401, None, 0)]})
    srv = _server(script)
    try:
        (err,) = _judge(srv, tmp_path).locate([_solution(0)])
    finally:
        srv.shutdown()
    assert err.first_error_step is None and err.reason == "http_401" and len(script.calls) == 1


def test_missing_key_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(ValueError, match="NO_SUCH_KEY_VAR"):
        LLMJudge(api_key_env="NO_SUCH_KEY_VAR")
    # a server on another machine needs the key too; one on this machine does not
    with pytest.raises(ValueError, match="NO_SUCH_KEY_VAR"):
        LLMJudge(api_key_env="NO_SUCH_KEY_VAR", base_url="http://10.0.0.5:8000/v1")
    for url in ("http://127.0.0.1:8000/v1", "http://localhost:1234/v1", "http://[::1]:80/v1"):
        assert LLMJudge(api_key_env="NO_SUCH_KEY_VAR", base_url=url).base_url == url
    assert not is_local_url("http://127.example.com/v1") and not is_local_url(None)


def test_parse_and_neutral_rule():
    assert parse_verdicts(_verdicts("neutral", "correct"), 2) == ["neutral", "correct"]
    with pytest.raises(ValueError, match="expected 3"):
        parse_verdicts(_verdicts("correct"), 3)
    assert first_error(["neutral", "neutral", "incorrect"]) == 3
    assert first_error(["neutral", "correct"]) is None


@pytest.mark.parametrize("reply_format", ["json", "json_schema", "llamacpp_schema"])
def test_the_reply_is_held_to_one_verdict_per_step(judge_env, tmp_path, reply_format):
    script = Script({0: [(200, _verdicts("correct", "incorrect", "correct"), 0)]})
    srv = _server(script)
    try:
        (err,) = _judge(srv, tmp_path, reply_format=reply_format).locate([_solution(0)])
    finally:
        srv.shutdown()
    assert err.first_error_step == 2
    (fmt,) = script.formats
    if reply_format == "json":
        assert fmt == {"type": "json_object"}
        return
    schema = fmt["json_schema"]["schema"] if reply_format == "json_schema" else fmt["schema"]
    assert fmt["type"] == ("json_schema" if reply_format == "json_schema" else "json_object")
    steps = schema["properties"]["steps"]
    assert steps["minItems"] == steps["maxItems"] == 3
    assert steps["items"]["properties"]["verdict"]["enum"] == ["correct", "neutral", "incorrect"]


def test_the_request_timeout_is_an_option_of_locate_and_eval_judge(tmp_path):
    from stepdpo.experiments.judge_eval import EvalJudgeConfig
    from stepdpo.options import build
    from stepdpo.stages.locate import LocateConfig, judge_from_config

    for cls in (LocateConfig, EvalJudgeConfig):
        cfg = build(cls, {"judge": "llm", "base_url": "http://127.0.0.1:9/v1", "request_timeout": "600"})
        judge = judge_from_config(cfg, None, tmp_path / "out.jsonl")
        assert judge.timeout == 600.0 and judge.client.timeout == 600.0
