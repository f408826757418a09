"""Where a stage's chunks run: in this process (``local``), or on a pool of Ray actors (``ray``).

The runner (:func:`~stepdpo.pipeline.runner.run_stage`) cuts a stage's inputs into a fixed
partition of chunks and stays the one writer of the output and of the resume ledger; an executor
only computes chunk results. The Ray executor ships the stage's chunk function to ``workers``
actors (each builds its own model replica once, on first use: a
:class:`LazyGenerator` crosses the wire as its name and options, never as weights), sends each chunk
to the least busy actor (two chunks in flight per actor at most), and hands the results back to the
driver in input order, so the output file is the one a local run writes, record for record.
Sampling seeds are keyed by content (:func:`~stepdpo.generation.base.row_seed`), not by worker,
process or time.

Failures: an actor whose process dies is restarted by Ray and its unfinished chunks are retried
(``max_restarts``/``max_task_retries``, :attr:`RayExecutor.max_restarts` times; a chunk that kills
its worker every time then fails the stage with a message naming it); a result is written once, by
the driver, whatever the retries. A killed driver loses only the chunks in flight: the ledger
says what is done and the
rerun redoes only the rest, as for a local run.

On GPUs each actor holds a vLLM engine (``--backend vllm``, ``--ray-gpus-per-worker`` GPUs each:
tensor parallel inside a replica, data parallel across replicas); on CPUs a transformers generator.

``ray-data`` keeps the stages' chunk functions in the driver and sends their sampling through a Ray
Data pipeline (:mod:`stepdpo.generation.raydata`): ``ray.data.llm``'s vLLM engine processor on
GPUs, the transformers generator in a Ray Data actor pool on CPUs; the same records again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from stepdpo.options import option

EXECUTORS = ("local", "ray", "ray-data")


@dataclass
class ExecutorOptions:
    """Where the stages' chunks run (collect, locate, rectify, eval)."""

    executor: str = option(
        "local",
        "local: in this process; ray: on a pool of Ray actors, a model replica each; ray-data: sampling "
        "through Ray Data (ray.data.llm's vLLM processor on GPUs).",
        choices=EXECUTORS,
    )
    ray_address: str | None = option(
        None, "The Ray cluster to join (ray executor; default: RAY_ADDRESS, else a local one for this run)."
    )
    ray_workers: int = option(2, "Ray actors, each with its own model replica (ray, ray-data).", min=1)
    ray_cpus_per_worker: float = option(1.0, "CPUs each Ray actor reserves (ray, ray-data).", min=0.0)
    ray_gpus_per_worker: float = option(
        0.0, "GPUs each Ray actor reserves (ray, ray-data; vLLM's tensor parallel size when above 1).", min=0.0
    )
    ray_data_chunk_scale: int = option(
        16,
        "ray-data: chunks this many times the local size, one Ray Data execution each (replicas start "
        "per execution; a killed driver redoes at most one chunk).",
        min=1,
    )


class LazyGenerator:
    """A generator named by its model and options, built on first use where it is used.

    It answers ``model_name`` and ``tokenizer`` without loading the model (the driver needs them
    for settings and prompts); ``generate`` and every other attribute build the real generator
    (:func:`~stepdpo.generation.load_generator`). Pickled, it carries only its name and options."""

    def __init__(self, model: str, backend: str = "auto", **kwargs: Any):
        from stepdpo.models import model_name

        self.model, self.backend, self.kwargs = model, backend, kwargs
        self.model_name = model_name(model)
        self._built: Any = None
        self._tokenizer: Any = None

    @property
    def tokenizer(self) -> Any:
        if self._built is not None:
            return self._built.tokenizer
        if self._tokenizer is None:
            from stepdpo.models import load_tokenizer

            self._tokenizer = load_tokenizer(self.model)
        return self._tokenizer

    @property
    def built(self) -> Any:
        if self._built is None:
            from stepdpo.generation import load_generator

            self._built = load_generator(self.model, backend=self.backend, **self.kwargs)
        return self._built

    def generate(self, prompts: list[str], sampling: Any) -> Any:
        return self.built.generate(prompts, sampling)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in ("model", "backend", "kwargs", "model_name"):
            raise AttributeError(name)
        return getattr(self.built, name)

    def __getstate__(self) -> dict[str, Any]:
        return {"model": self.model, "backend": self.backend, "kwargs": self.kwargs, "model_name": self.model_name}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _built=None, _tokenizer=None)


ChunkFn = Callable[[list[Any]], Iterable[Any]]


class LocalExecutor:
    """Every chunk in this process, in order."""

    name = "local"
    chunk_scale = 1

    def map(self, fn: ChunkFn, chunks: Sequence[list[Any]]) -> Iterator[Iterable[Any]]:
        for chunk in chunks:
            yield fn(chunk)  # consumed before the next chunk starts: records are written as they come


class RayDataExecutor(LocalExecutor):
    """The chunk functions in this process, their sampling through Ray Data
    (:class:`~stepdpo.generation.raydata.RayDataGenerator`), on chunks ``chunk_scale`` times the
    local size: each chunk is one Ray Data execution, which starts the replicas anew."""

    name = "ray-data"

    def __init__(self, chunk_scale: int = 16):
        self.chunk_scale = chunk_scale


class _Worker:
    """The body of a Ray actor: the stage's chunk function, unpickled once per actor process."""

    def __init__(self, fn: ChunkFn):
        self.fn = fn

    def run(self, chunk: list[Any]) -> list[Any]:
        return list(self.fn(chunk))

    def pid(self) -> int:
        return os.getpid()


class RayExecutor:
    """Chunks on ``workers`` Ray actors; results come back in input order.

    Joins the cluster at ``address`` (or ``RAY_ADDRESS``), or starts a local one for the run; the
    actors of one stage are created by :meth:`map` and released when it ends."""

    name = "ray"
    chunk_scale = 1

    max_restarts = 3
    """How often a worker is restarted (and its chunk retried) before the stage fails: a chunk that
    kills its worker every time (out of memory, a crashing kernel) stops the stage instead of hanging it."""

    def __init__(self, address: str | None = None, workers: int = 2, cpus: float = 1.0, gpus: float = 0.0):
        try:
            import ray
        except ImportError as e:
            raise ImportError('--executor ray needs Ray: pip install "stepdpo[ray]"') from e
        self.ray, self.workers, self.cpus, self.gpus = ray, workers, cpus, gpus
        if not ray.is_initialized():
            ray.init(address=address or os.environ.get("RAY_ADDRESS") or None, log_to_driver=False)
        self.actors: list[Any] = []

    def map(self, fn: ChunkFn, chunks: Sequence[list[Any]]) -> Iterator[list[Any]]:
        ray = self.ray
        if not chunks:
            return
        from ray.exceptions import ActorDiedError, RayActorError

        actor_cls = ray.remote(_Worker).options(
            num_cpus=self.cpus, num_gpus=self.gpus, max_restarts=self.max_restarts, max_task_retries=self.max_restarts
        )
        # the chunk function goes inline with each actor's creation (it is small: a LazyGenerator is a
        # name and options): an argument in the object store would be lost to a restarted actor if
        # the store evicted it, which Ray warns of at ERROR level on every run
        self.actors = [actor_cls.remote(fn) for _ in range(min(self.workers, len(chunks)))]
        try:
            pending: dict[Any, tuple[int, int]] = {}  # result ref -> (chunk, actor)
            load = [0] * len(self.actors)
            ready: dict[int, list[Any]] = {}
            nxt, emitted = 0, 0
            while emitted < len(chunks):
                # the next chunk goes to the least busy actor, up to two in flight each (one running,
                # one queued behind it): a slow chunk on one actor does not hold the others back
                while nxt < len(chunks) and min(load) < 2:
                    a = load.index(min(load))
                    pending[self.actors[a].run.remote(chunks[nxt])] = (nxt, a)
                    load[a] += 1
                    nxt += 1
                done, _ = ray.wait(list(pending), num_returns=1)
                for r in done:
                    i, a = pending.pop(r)
                    load[a] -= 1
                    try:
                        ready[i] = ray.get(r)
                    except (ActorDiedError, RayActorError) as e:
                        raise RuntimeError(
                            f"chunk {i} of {len(chunks)} ({len(chunks[i])} inputs) killed its Ray worker "
                            f"{self.max_restarts + 1} times; the stage stops (rerun to resume; the chunks "
                            f"written so far are kept): {type(e).__name__}"
                        ) from None
                while emitted in ready:
                    yield ready.pop(emitted)
                    emitted += 1
        finally:
            for a in self.actors:
                ray.kill(a)
            self.actors = []


def make_executor(opts: Any) -> LocalExecutor | RayExecutor:
    """The executor an options object (:class:`ExecutorOptions` or a config built on it) names."""
    if getattr(opts, "executor", "local") == "local":
        return LocalExecutor()
    if opts.executor == "ray-data":
        return RayDataExecutor(opts.ray_data_chunk_scale)
    return RayExecutor(opts.ray_address, opts.ray_workers, opts.ray_cpus_per_worker, opts.ray_gpus_per_worker)


def _vllm_engine_kwargs(cfg: Any) -> dict[str, Any]:
    """The user's vLLM options as ray.data.llm's engine arguments (its replicas run on GPUs)."""
    from stepdpo.generation.vllm import engine_args

    return engine_args(**cfg.vllm_options(), on_cpu=False)


def make_generator(cfg: Any) -> Any:
    """The generator of a config with model options (``model``, ``backend``, ``batch_size``): built
    here for the local executor, a :class:`LazyGenerator` each Ray actor builds for itself, a
    Ray Data pipeline for ``ray-data``."""
    from stepdpo.models import absolute_model

    kwargs = cfg.generator_kwargs()
    model = absolute_model(cfg.model)  # a relative folder means the driver's, wherever a worker starts
    if getattr(cfg, "executor", "local") == "ray-data":
        from stepdpo.generation.raydata import RayDataGenerator

        # auto: vLLM where the replicas get GPUs (the driver may sit on a CPU node)
        engine = "vllm" if cfg.backend == "vllm" or (cfg.backend == "auto" and cfg.ray_gpus_per_worker > 0) else "hf"
        return RayDataGenerator(
            model,
            engine=engine,
            replicas=cfg.ray_workers,
            cpus_per_replica=cfg.ray_cpus_per_worker,
            gpus_per_replica=cfg.ray_gpus_per_worker,
            batch_size=cfg.batch_size,
            address=cfg.ray_address,
            engine_kwargs=_vllm_engine_kwargs(cfg) if engine == "vllm" else None,
        )
    if getattr(cfg, "executor", "local") == "ray":
        if cfg.backend == "vllm" and cfg.ray_gpus_per_worker > 1:
            kwargs["tensor_parallel_size"] = int(cfg.ray_gpus_per_worker)
        return LazyGenerator(model, backend=cfg.backend, **kwargs)
    from stepdpo.generation import load_generator

    return load_generator(cfg.model, backend=cfg.backend, **kwargs)
