"""Realistic demo records: every run shape of the record-format page, deterministic per seed.

The upstream tracker's files vary more than any hand-written fixture suggests: eight Stille Post
iterations in eight scripts, outputs that were blocked or failed, fast-path safety checks without
a model, ComfyUI jobs whose "file path" is a UUID, a key renamed in December 2025, item types the
taxonomy only planned. :func:`generate_records` produces all of that deterministically for a seed,
so ``execgraph serve --demo``, the test suites and the 100,000-record benchmark look at the same
kind of data a deployment holds. Generation is tuned for volume: content comes from fixed pools
(:mod:`storage.demo.content`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from storage.demo.content import (
    _ANIMATION,
    _BLOCK_MESSAGES_STAGE1,
    _BLOCK_MESSAGES_STAGE3,
    _BLOCKED_PROMPTS,
    _CONFIGS,
    _FAILURES,
    _INTERCEPTION_SENTENCES,
    _MODES,
    _OUTPUT_POOL,
    _PROMPT_POOL,
    _SAFETY_LEVELS,
    _SAFETY_MODEL,
    _STILLE_POST_LANGUAGES,
    _STILLE_POST_SENTENCES,
    _DemoRandom,
    _Output,
    _weighted,
)

#: End of the default date range (exclusive); the range covers the 92 days before it, so it
#: straddles the rename of ``backend_used`` (both spellings appear in demo stores).
DEFAULT_END: Final = datetime(2026, 2, 1)
DEFAULT_SPAN: Final = timedelta(days=92)
#: Files written before this date call ``backend_type`` ``backend_used``.
BACKEND_KEY_RENAMED: Final = datetime(2025, 12, 1)
#: Files from this date on may contain item types the taxonomy only planned (or never named).
NEW_ITEM_TYPES_FROM: Final = datetime(2026, 1, 1)

# --- one run ------------------------------------------------------------------------------------


class _Run:
    """Accumulates the items of one record, keeping sequence numbers and the clock consistent."""

    def __init__(self, rng: _DemoRandom, start: datetime, execution_id: str) -> None:
        self.rng = rng
        self.start = start
        self.execution_id = execution_id
        self.user = "anonymous"
        self.session = "default"
        self.elapsed = 0.0
        self.items: list[dict[str, Any]] = []
        self.backend_key = "backend_used" if start < BACKEND_KEY_RENAMED else "backend_type"
        self.mode = _MODES[1] if rng.random() < 0.4 else _MODES[0]
        self.safety_level = rng.pick(_SAFETY_LEVELS)
        self.language, self.prompt, self.english = rng.pick(_PROMPT_POOL)
        self.config = rng.pick(_CONFIGS)
        self.used_seed: int | None = None
        self.unknown_extra = start >= NEW_ITEM_TYPES_FROM and rng.random() < 0.07

    def add(
        self,
        item_type: str,
        stage: int,
        media_type: str = "text",
        *,
        content: str | None = None,
        seconds: float | None = None,
        stage_iteration: int | None = None,
        loop_iteration: int | None = None,
        file_path: str | None = None,
        config_used: str | None = None,
        model_used: str | None = None,
        backend: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Append one item with all 14 keys; ``seconds`` is its duration (None for events)."""
        duration = None if seconds is None else round(seconds, 3)
        self.elapsed += (duration or 0.0) + self.rng.uniform(0.004, 0.2)
        self.items.append(
            {
                self.backend_key: backend,
                "config_used": config_used,
                "content": content,
                "execution_time": duration,
                "file_path": file_path,
                "item_type": item_type,
                "loop_iteration": loop_iteration,
                "media_type": media_type,
                "metadata": metadata if metadata is not None else {},
                "model_used": model_used,
                "sequence_number": len(self.items) + 1,
                "stage": stage,
                "stage_iteration": stage_iteration,
                "timestamp": (self.start + timedelta(seconds=self.elapsed)).isoformat(),
            }
        )

    def llm_seconds(self, low: float, high: float) -> float:
        return self.rng.uniform(low, high) * self.mode.speed

    def interception_text(self) -> str:
        rng = self.rng
        subject = self.english[0].lower() + self.english[1:]
        paragraphs = 1 if rng.random() < 0.95 else rng.pick_int(3, 4)
        parts = [
            rng.run_of(_INTERCEPTION_SENTENCES, rng.pick_int(3, 14)) for _ in range(paragraphs)
        ]
        return "\n\n".join(parts).replace("{s}", subject)

    def to_record(self) -> dict[str, Any]:
        return {
            "config_name": self.config,
            "execution_id": self.execution_id,
            "execution_mode": self.mode.name,
            "items": self.items,
            "safety_level": self.safety_level,
            "session_id": self.session,
            "taxonomy_version": "1.0",
            "timestamp": self.start.isoformat(),
            "total_execution_time": round(self.elapsed + self.rng.uniform(0.05, 0.5), 3),
            "used_seed": self.used_seed,
            "user_id": self.user,
        }


# --- stages -------------------------------------------------------------------------------------


def _start(run: _Run) -> None:
    metadata = {
        "config": run.config,
        "execution_mode": run.mode.name,
        "safety_level": run.safety_level,
    }
    run.add("pipeline_start", 0, "metadata", metadata=metadata)


def _user_text(run: _Run) -> None:
    run.add("user_input_text", 1, content=run.prompt, metadata={"language": run.language})


def _user_image(run: _Run) -> None:
    name = f"{run.rng.getrandbits(48):012x}.png"
    path = f"/srv/ai4artsed/uploads/{run.start:%Y-%m-%d}/{name}"
    size = run.rng.pick((512, 768, 1024))
    metadata = {"width": size, "height": size, "mime_type": "image/png"}
    run.add("user_input_image", 1, "image", file_path=path, metadata=metadata)


def _translation(run: _Run) -> None:
    run.add(
        "translation_result",
        1,
        content=run.english,
        seconds=run.llm_seconds(0.3, 1.4),
        model_used=run.mode.translation_model,
        backend=run.mode.backend,
        metadata={"source_language": run.language, "target_language": "en"},
    )


def _interception_final(run: _Run, text: str | None = None) -> None:
    model = run.rng.pick(run.mode.interception_models)
    run.add(
        "interception_final",
        2,
        content=text or run.interception_text(),
        seconds=run.llm_seconds(1.5, 8.0),
        config_used=run.config,
        model_used=model,
        backend=run.mode.backend,
        metadata={"temperature": 0.7, "iterations": 1 if text is None else 8},
    )


def _stille_post(run: _Run) -> str:
    model = run.rng.pick(run.mode.interception_models)
    previous = "en"
    text = ""
    for iteration, language in enumerate(_STILLE_POST_LANGUAGES, start=1):
        pool = _STILLE_POST_SENTENCES[language]
        text = run.rng.run_of(pool, run.rng.pick_int(4, 5))
        if run.rng.random() < 0.4:
            text += "\n\n" + run.rng.run_of(pool, 2)
        metadata = {
            "iteration": iteration,
            "total_iterations": len(_STILLE_POST_LANGUAGES),
            "source_language": previous,
            "target_language": language,
            "temperature": 0.9,
        }
        run.add(
            "interception_iteration",
            2,
            content=text,
            seconds=run.llm_seconds(1.0, 6.0),
            stage_iteration=iteration,
            config_used="stillepost",
            model_used=model,
            backend=run.mode.backend,
            metadata=metadata,
        )
        previous = language
    return text


def _safety_check(run: _Run, loop: int, *, safe: bool) -> None:
    if safe and run.rng.random() < 0.6:  # string matching only: no model, no backend
        seconds = run.rng.uniform(0.002, 0.03)
        metadata: dict[str, Any] = {"safe": True, "method": "fast_path"}
        model = backend = None
    else:
        seconds = run.rng.uniform(0.3, 2.5)
        metadata = {"safe": safe, "method": "llm", "safety_level": run.safety_level}
        if not safe:
            metadata["category"] = run.rng.pick(("S1", "S10", "S12"))
        model, backend = _SAFETY_MODEL, "ollama"
    run.add(
        "stage3_safety_check",
        3,
        seconds=seconds,
        loop_iteration=loop,
        model_used=model,
        backend=backend,
        metadata=metadata,
    )


def _output(run: _Run, loop: int, output: _Output) -> None:
    rng = run.rng
    if run.unknown_extra and output.backend == "openrouter":
        run.add(
            "backend_switch",
            4,
            "metadata",
            loop_iteration=loop,
            metadata={"from": "comfyui", "to": "openrouter", "reason": "ComfyUI queue full"},
        )
    run.add(
        output.item_type,
        4,
        output.media_type,
        seconds=rng.uniform(*output.seconds),
        loop_iteration=loop,
        file_path=_reference(run, loop, output),
        config_used=output.config,
        model_used=output.model,
        backend=output.backend,
        metadata=_output_metadata(run, output),
    )


def _reference(run: _Run, loop: int, output: _Output) -> str:
    rng = run.rng
    if output.reference == "uuid":
        return _uuid4(rng)
    if output.reference == "view":
        return f"http://127.0.0.1:8188/view?filename=ComfyUI_{rng.randrange(99999):05d}_.png&type=output"
    if output.reference == "url":
        return f"https://media.ai4artsed.example/generated/{rng.getrandbits(64):016x}.png"
    return (
        f"/srv/ai4artsed/exports/media/{run.start:%Y-%m-%d}/"
        f"{run.execution_id}_{loop}.{output.extension}"
    )


def _output_metadata(run: _Run, output: _Output) -> dict[str, Any]:
    metadata: dict[str, Any] = {"seed": run.used_seed, "workflow": output.config}
    if output.media_type == "image":
        size = run.rng.pick((768, 1024, 1024, 1344))
        metadata.update(width=size, height=size, steps=run.rng.pick((20, 25, 28)), cfg=4.5)
    elif output.media_type in {"audio", "music"}:
        metadata.update(duration_seconds=float(run.rng.pick((10, 30, 47, 60))), sample_rate=44100)
    elif output.media_type in {"video", "animation"}:
        metadata.update(frames=81, fps=16, resolution="832x480")
    else:
        metadata.update(format=output.extension, faces=run.rng.pick((20000, 40000)))
    return metadata


def _outputs(run: _Run, count: int, *, blocked: float) -> bool:
    """Stages 3-4 for ``count`` output configs; returns whether any output was produced."""
    rng = run.rng
    run.used_seed = _seed(rng)
    chosen = [rng.pick(_OUTPUT_POOL) for _ in range(count)]
    if run.unknown_extra and rng.random() < 0.5:
        chosen.append(_ANIMATION)
    produced = False
    for loop, output in enumerate(chosen, start=1):
        if rng.random() < blocked:
            _blocked_output(run, loop, output)
            continue
        _safety_check(run, loop, safe=True)
        _output(run, loop, output)
        produced = True
    return produced


def _blocked_output(run: _Run, loop: int, output: _Output) -> None:
    """Stage 3 refuses ``output``: a failed safety check, then ``stage3_blocked``."""
    _safety_check(run, loop, safe=False)
    run.add(
        "stage3_blocked",
        3,
        content=run.rng.pick(_BLOCK_MESSAGES_STAGE3),
        loop_iteration=loop,
        model_used=_SAFETY_MODEL,
        backend="ollama",
        metadata={"safety_level": run.safety_level, "output_config": output.config},
    )


def _seed(rng: _DemoRandom) -> int | None:
    draw = rng.random()
    if draw < 0.08:
        return None
    if draw < 0.2:
        return rng.randrange(2**32, 2**53)  # beyond 32 bits
    return rng.getrandbits(32)


def _uuid4(rng: _DemoRandom) -> str:
    value = f"{rng.getrandbits(128):032x}"
    variant = "89ab"[int(value[16], 16) & 3]
    return f"{value[:8]}-{value[8:12]}-4{value[13:16]}-{variant}{value[17:20]}-{value[20:]}"


def _complete(run: _Run) -> None:
    outputs = sum(1 for item in run.items if item["item_type"].startswith("output_"))
    metadata = {"total_items": len(run.items) + 1, "outputs": outputs}
    run.add("pipeline_complete", 5, "metadata", metadata=metadata)


def _style_probe(run: _Run) -> None:
    """A made-up item type, standing in for whatever upstream adds next."""
    run.add(
        "stage2_style_probe",
        2,
        content=f"Style probe: {run.english}",
        seconds=run.llm_seconds(0.2, 1.0),
        model_used=run.rng.pick(run.mode.interception_models),
        backend=run.mode.backend,
        metadata={"probe": "palette", "score": round(run.rng.random(), 3)},
    )


def _interception(run: _Run) -> None:
    if run.unknown_extra and run.rng.random() < 0.5:
        _style_probe(run)
    _interception_final(run)


# --- shapes -------------------------------------------------------------------------------------


def _shape_text(run: _Run) -> None:
    _start(run)
    _user_text(run)
    _translation(run)
    _interception(run)
    _complete(run)


def _shape_outputs(run: _Run, count: int, blocked: float) -> None:
    _start(run)
    _user_text(run)
    _translation(run)
    _interception(run)
    if _outputs(run, count, blocked=blocked):
        _complete(run)


def _shape_image(run: _Run) -> None:
    _shape_outputs(run, 1, blocked=0.0)


def _shape_multi(run: _Run) -> None:
    if run.rng.random() < 0.5:
        run.config = "image_comparison"
    _shape_outputs(run, run.rng.pick_int(2, 4), blocked=0.15)


def _shape_blocked3(run: _Run) -> None:
    _shape_outputs(run, 1, blocked=1.0)


def _shape_stillepost(run: _Run) -> None:
    run.config = "stillepost"
    _start(run)
    _user_text(run)
    _translation(run)
    final = _stille_post(run)
    _interception_final(run, final)
    count = run.rng.pick((0, 1, 1, 2))
    if count == 0 or _outputs(run, count, blocked=0.1):
        _complete(run)


def _shape_image_input(run: _Run) -> None:
    run.config = run.rng.pick(("image_comparison", "bauhaus", "dada"))
    _start(run)
    _user_image(run)
    _user_text(run)
    run.add(
        "stage1_safety_check_image",
        1,
        "image",
        seconds=run.rng.uniform(0.5, 3.0),
        model_used="local/llava:7b",
        backend="ollama",
        metadata={"safe": True, "method": "llm"},
    )
    _translation(run)
    _interception(run)
    if _outputs(run, 1, blocked=0.0):
        _complete(run)


def _shape_blocked1(run: _Run) -> None:
    run.language, run.prompt = "de", run.rng.pick(_BLOCKED_PROMPTS)
    _start(run)
    _user_text(run)
    run.add(
        "stage1_blocked",
        1,
        content=run.rng.pick(_BLOCK_MESSAGES_STAGE1),
        seconds=run.rng.uniform(0.002, 0.02),
        metadata={"reason": "legal_symbols", "method": "fast_path", "law": "§86a StGB"},
    )


def _shape_error(run: _Run) -> None:
    stage, backend, error_type, message = run.rng.pick(_FAILURES)
    _start(run)
    _user_text(run)
    if stage > 1:
        _translation(run)
    if stage > 2:
        _interception(run)
        run.used_seed = _seed(run.rng)
        _safety_check(run, 1, safe=True)
    run.add(
        "pipeline_error",
        stage,
        content=message,
        loop_iteration=1 if stage == 4 else None,
        backend=backend,
        metadata={"error_type": error_type, "stage": stage},
    )


_SHAPE_POOL: Final[tuple[Callable[[_Run], None], ...]] = _weighted((
    (_shape_text, 12),
    (_shape_image, 33),
    (_shape_multi, 14),
    (_shape_stillepost, 10),
    (_shape_image_input, 9),
    (_shape_blocked1, 6),
    (_shape_blocked3, 8),
    (_shape_error, 8),
))  # fmt: skip

# --- records ------------------------------------------------------------------------------------


def generate_records(
    count: int,
    *,
    seed: int = 0,
    start: datetime | None = None,
    end: datetime | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield ``count`` records in the on-disk shape, the same ones for the same arguments.

    Start times are naive local times in ``[start, end)`` (default: the 92 days before
    2026-02-01), weighted towards school hours on weekdays; execution ids are unique. Users and
    sessions come from a small pool of pseudonyms so that filters group records. Record ``i``
    depends only on the seed, ``i`` and the range: a shorter run yields a prefix of a longer one.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    first, last = _date_range(start, end)
    return _generate(seed, range(count), first, last)


@dataclass(frozen=True, slots=True)
class _Population:
    """What all records of one seed share: pseudonym pools and the execution-id scrambler."""

    users: tuple[str, ...]
    sessions: tuple[str, ...]
    id_offset: int

    @classmethod
    def of(cls, seed: int) -> _Population:
        rng = _DemoRandom(seed)
        users = ("anonymous",) * 8 + tuple(f"u_{rng.getrandbits(40):010x}" for _ in range(24))
        sessions = ("default",) * 4 + tuple(f"s_{rng.getrandbits(32):08x}" for _ in range(12))
        return cls(users, sessions, rng.getrandbits(32))

    def id_suffix(self, index: int) -> str:
        """Eight hex digits, distinct for every index below 2**32 (an odd multiplier is a
        bijection modulo 2**32), so execution ids are unique without remembering them."""
        return f"{(index * 0x9E3779B1 + self.id_offset) & 0xFFFFFFFF:08x}"


def _generate(
    seed: int, indices: range, first: datetime, last: datetime
) -> Iterator[dict[str, Any]]:
    population = _Population.of(seed)
    rng = _DemoRandom(seed)
    for index in indices:
        rng.seed((seed << 40) + index)
        started = _start_time(rng, first, last)
        execution_id = f"exec_{started:%Y%m%d_%H%M%S}_{population.id_suffix(index)}"
        run = _Run(rng, started, execution_id)
        run.user, run.session = rng.pick(population.users), rng.pick(population.sessions)
        rng.pick(_SHAPE_POOL)(run)
        yield run.to_record()


def _date_range(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    if start is None:
        end = end or DEFAULT_END
        start = end - DEFAULT_SPAN
    elif end is None:
        end = start + DEFAULT_SPAN
    if start.tzinfo is not None or end.tzinfo is not None:
        raise ValueError("the tracker writes naive local times: pass naive datetimes")
    if end <= start:
        raise ValueError("end must be after start")
    return start, end


def _start_time(rng: _DemoRandom, first: datetime, last: datetime) -> datetime:
    """A time in ``[first, last)``, mostly during school hours on weekdays."""
    span = (last - first).total_seconds()
    when = first
    for _ in range(12):
        when = first + timedelta(seconds=rng.random() * span)
        weekday, hour = when.weekday(), when.hour
        likelihood = 0.03 if weekday >= 5 else 1.0 if 8 <= hour < 17 else 0.2 if hour < 21 else 0.02
        if rng.random() < likelihood:
            break
    return min(when, last - timedelta(microseconds=1))


# --- the showcase run ---------------------------------------------------------------------------

#: The run the README's examples name; ``serve --demo`` writes it beside the generated records
#: (``write_demo_store(..., showcase=True)``), so the README's detail example answers with it.
SHOWCASE_ID: Final = "exec_20251103_205239_896e054c"
_SHOWCASE_START: Final = datetime(2025, 11, 3, 20, 52, 39, 418_207)
#: The README's text example (``text: "wolken haus"``) finds this prompt.
_SHOWCASE_PROMPT: Final = (
    "de",
    "Ein Haus aus Wolken, das über einem stillen See schwebt",
    "A house made of clouds floating above a quiet lake",
)


def showcase_record() -> dict[str, Any]:
    """The README's example run, the same every time.

    A kids' Stille Post run through all eight languages, then two outputs: the first blocked at
    stage 3, the second an image, so every README example (the November list of Stille Post
    runs, runs blocked at stage 3, the text search) finds it.
    """
    rng = _DemoRandom(0x5EED)
    run = _Run(rng, _SHOWCASE_START, SHOWCASE_ID)
    run.config, run.safety_level, run.mode = "stillepost", "kids", _MODES[0]
    run.language, run.prompt, run.english = _SHOWCASE_PROMPT
    _start(run)
    _user_text(run)
    _translation(run)
    _interception_final(run, _stille_post(run))
    run.used_seed = rng.getrandbits(32)
    image = _OUTPUT_POOL[0]
    _blocked_output(run, 1, image)
    _safety_check(run, 2, safe=True)
    _output(run, 2, image)
    _complete(run)
    return run.to_record()
