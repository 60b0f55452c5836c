"""Realistic demo records and deliberately broken files, for the demo server, tests and benchmarks.

The upstream tracker's files vary more than any hand-written fixture suggests: eight Stille Post
iterations in eight scripts, outputs that were blocked or failed, fast-path safety checks without
a model, ComfyUI jobs whose "file path" is a UUID, a key renamed in December 2025, item types the
taxonomy only planned. :func:`generate_records` produces all of that deterministically for a seed,
so ``execgraph serve --demo``, the test suites and the 100,000-record benchmark look at the same
kind of data a deployment holds. The shapes follow the record-format page's "Typical shapes".

:func:`write_malformed` produces the files a tolerant reader must skip and report (see
:data:`MALFORMED_KINDS`); :func:`write_demo_store` writes a whole store with one of each.

Generation is tuned for volume (tens of thousands of records per second before I/O): content
comes from fixed text pools, and serialisation goes through :func:`serialize_record`, which
produces the tracker's exact bytes via orjson.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

from storage.writer_sim import serialize_record

#: End of the default date range (exclusive); the range covers the 92 days before it, so it
#: straddles the rename of ``backend_used`` (both spellings appear in demo stores).
DEFAULT_END: Final = datetime(2026, 2, 1)
DEFAULT_SPAN: Final = timedelta(days=92)
#: Files written before this date call ``backend_type`` ``backend_used``.
BACKEND_KEY_RENAMED: Final = datetime(2025, 12, 1)
#: Files from this date on may contain item types the taxonomy only planned (or never named).
NEW_ITEM_TYPES_FROM: Final = datetime(2026, 1, 1)
#: ``write_demo_store`` reports progress after this many records (and once at the end).
PROGRESS_EVERY: Final = 1000

_T = TypeVar("_T")


class _DemoRandom(random.Random):
    """``random.Random`` with float-based picks: several times faster than ``choice`` and
    ``randint`` and just as deterministic, which is all demo data needs at 100,000 records."""

    def pick(self, seq: Sequence[_T]) -> _T:
        """One element of ``seq``."""
        return seq[int(self.random() * len(seq))]

    def pick_int(self, low: int, high: int) -> int:
        """An integer in ``[low, high]``."""
        return low + int(self.random() * (high - low + 1))

    def run_of(self, pool: tuple[str, ...], count: int) -> str:
        """``count`` consecutive sentences of ``pool`` (wrapping around), from a random start."""
        start = int(self.random() * len(pool))
        return " ".join((pool + pool)[start : start + count])


def _weighted(pairs: tuple[tuple[_T, int], ...]) -> tuple[_T, ...]:
    """A pool to ``rng.pick`` from, each value repeated by its weight (faster than choices)."""
    return tuple(value for value, weight in pairs for _ in range(weight))


# --- content pools -----------------------------------------------------------------------------

#: (language, prompt as typed, English translation)
_PROMPTS: Final = (
    ("de", "Ein Fuchs, der über einen zugefrorenen See tanzt, während Nordlichter leuchten",
     "A fox dancing across a frozen lake while northern lights glow"),
    ("de", "Ein Baumhaus aus alten Büchern über den Dächern von München",
     "A tree house made of old books above the roofs of Munich"),
    ("de", "Übermüdete Roboter spielen Fußball im strömenden Regen",
     "Overtired robots playing football in the pouring rain"),
    ("de", "Mein Hund als König mit einer Krone aus Gänseblümchen",
     "My dog as a king with a crown of daisies"),
    ("de", "Eine Straßenbahn, die durch ein Aquarium voller Quallen fährt",
     "A tram driving through an aquarium full of jellyfish"),
    ("ko", "달빛 아래에서 춤추는 고양이", "A cat dancing under the moonlight"),
    ("ko", "바다 속에 있는 작은 도서관", "A small library at the bottom of the sea"),
    ("ja", "桜の木の下で眠る小さな龍", "A small dragon sleeping under a cherry tree"),
    ("ja", "雨の日に東京を歩くペンギン", "A penguin walking through Tokyo on a rainy day"),
    ("hi", "बारिश में नाचता हुआ मोर", "A peacock dancing in the rain"),
    ("hi", "चाँद पर चाय पीता हुआ हाथी", "An elephant drinking tea on the moon"),
    ("ar", "قطة تطير فوق المدينة القديمة", "A cat flying over the old city"),
    ("ar", "حديقة من الزجاج في وسط الصحراء", "A glass garden in the middle of the desert"),
    ("fr", "Une baleine qui vole au-dessus de la tour Eiffel",
     "A whale flying over the Eiffel Tower"),
    ("fr", "Un château de glace où habitent des escargots géants",
     "An ice castle inhabited by giant snails"),
    ("en", "A lighthouse made of candy on a stormy night",
     "A lighthouse made of candy on a stormy night"),
    ("en", "Robots painting a mural of their own dreams",
     "Robots painting a mural of their own dreams"),
    ("emoji", "🐉🌈 ein Drache, der einen Regenbogen frisst 🍭", "A dragon eating a rainbow"),
    ("emoji", "🚀🐱✨ Katze im Weltall", "A cat in outer space"),
)  # fmt: skip
#: German dominates: most workshops are held in German.
_PROMPT_POOL: Final = _PROMPTS + _PROMPTS[:5] * 2

_BLOCKED_PROMPTS: Final = (
    "Eine Fahne mit einem verbotenen Symbol (§86a) über dem Schulhof",
    "Zeichne ein verfassungswidriges Kennzeichen auf die Turnhallenwand",
    "Ein Soldat mit verbotenen Abzeichen auf der Uniform",
)
_BLOCK_MESSAGES_STAGE1: Final = (
    "Blocked: legal symbols violation (§86a StGB)",
    "Dein Prompt enthält ein verbotenes Kennzeichen (§86a StGB). Bitte formuliere ihn neu.",
)
_BLOCK_MESSAGES_STAGE3: Final = (
    "Unsafe for the age group: depiction of violence",
    "Unsafe for the age group: frightening content",
    "Nicht geeignet für diese Altersgruppe: Gewaltdarstellung",
)

_INTERCEPTION_SENTENCES: Final = (
    "Imagine {s}, but seen through the eyes of a collage artist who cuts the world into paper "
    "strips and glues them back together in the wrong order.",
    "The scene is built from torn newspaper headlines, train tickets and buttons; every object in "
    "it carries a word that does not belong to it.",
    "Colours are reduced to primary red, yellow and blue, arranged on a strict grid, so that the "
    "motif becomes a study of balance, weight and empty space.",
    "Light falls from the upper left like in an old workshop photograph, casting long geometric "
    "shadows across the composition.",
    "The perspective is deliberately flattened: foreground and background share the same plane, "
    "and the viewer has to decide what is near and what is far.",
    "A narrator whispers the same sentence over and over until the meaning dissolves and only the "
    "rhythm of the syllables remains.",
    "Everyday materials such as cardboard, wool, tin foil and chalk replace the expected textures, "
    "giving the image a handmade, slightly clumsy warmth.",
    "The mood is playful but uneasy, as if {s} were a memory from a dream that someone tries to "
    "retell to a friend the next morning.",
    "Typography enters the picture: large stencilled letters spell nonsense words across the sky "
    "and cast shadows like real objects.",
    "Repetition is the central device; the main motif appears three times, each time smaller, "
    "quieter and further away from the centre.",
    "The camera stands at the height of a child's eyes, so tables become roofs and adults are only "
    "legs and shoes at the edge of the frame.",
    "Instead of a single moment, the image shows several moments at once, overlapping like frames "
    "of a film that was exposed twice.",
    "Sounds are translated into shapes: a bell becomes a circle, a whistle a thin diagonal line, "
    "laughter a scatter of small dots.",
    "Nothing in the composition is symmetrical except a small square in the bottom right corner, "
    "which holds the whole picture together.",
    "The background is a pale, grainy paper tone with visible pencil guide lines that were never "
    "erased.",
    "Every shape has a clear outline drawn with a thick brush, as in a woodcut, and the gaps "
    "between shapes matter as much as the shapes themselves.",
)

#: Stille Post passes the text through eight languages; each pool describes the drifting image.
_STILLE_POST_LANGUAGES: Final = ("fr", "ko", "hi", "ar", "ja", "es", "de", "en")
_STILLE_POST_SENTENCES: Final[Mapping[str, tuple[str, ...]]] = {
    "fr": (
        "Une image où les couleurs se mélangent comme dans un rêve d'enfant.",
        "Au centre, un animal étrange regarde le spectateur avec curiosité.",
        "Le ciel est rempli de formes géométriques qui flottent doucement.",
        "Tout semble calme, mais quelque chose d'inattendu se cache dans l'ombre.",
        "Les contours sont dessinés à la craie sur un papier un peu froissé.",
    ),
    "ko": (
        "아이의 꿈처럼 색깔들이 서로 섞이는 그림입니다.",
        "가운데에는 이상한 동물이 호기심 가득한 눈으로 관객을 바라봅니다.",
        "하늘은 천천히 떠다니는 기하학적 모양으로 가득 차 있습니다.",
        "모든 것이 조용해 보이지만 그림자 속에 뜻밖의 무언가가 숨어 있습니다.",
        "윤곽선은 조금 구겨진 종이 위에 분필로 그려져 있습니다.",
    ),
    "hi": (
        "यह एक ऐसी तस्वीर है जिसमें रंग किसी बच्चे के सपने की तरह घुल-मिल जाते हैं।",
        "बीच में एक अजीब जानवर जिज्ञासा से दर्शक की ओर देखता है।",
        "आसमान धीरे-धीरे तैरती ज्यामितीय आकृतियों से भरा है।",
        "सब कुछ शांत लगता है, लेकिन छाया में कुछ अनपेक्षित छिपा है।",
        "रेखाएँ थोड़े मुड़े हुए कागज़ पर चॉक से बनाई गई हैं।",
    ),
    "ar": (
        "صورة تختلط فيها الألوان كما في حلم طفل.",
        "في الوسط حيوان غريب ينظر إلى المشاهد بفضول.",
        "السماء مليئة بأشكال هندسية تطفو ببطء.",
        "يبدو كل شيء هادئًا، لكن شيئًا غير متوقع يختبئ في الظل.",
        "الخطوط مرسومة بالطباشير على ورق مجعد قليلًا.",
    ),
    "ja": (
        "子どもの夢のように色が混ざり合う絵です。",
        "真ん中では、不思議な動物が好奇心いっぱいに見る人を見つめています。",
        "空はゆっくり漂う幾何学的な形でいっぱいです。",
        "すべてが静かに見えますが、影の中に思いがけないものが隠れています。",
        "輪郭は少ししわのある紙にチョークで描かれています。",
    ),
    "es": (
        "Una imagen en la que los colores se mezclan como en el sueño de un niño.",
        "En el centro, un animal extraño mira al espectador con curiosidad.",
        "El cielo está lleno de formas geométricas que flotan lentamente.",
        "Todo parece tranquilo, pero algo inesperado se esconde en la sombra.",
        "Los contornos están dibujados con tiza sobre un papel algo arrugado.",
    ),
    "de": (
        "Ein Bild, in dem sich die Farben wie im Traum eines Kindes vermischen.",
        "In der Mitte schaut ein seltsames Tier neugierig die Betrachtenden an.",
        "Der Himmel ist voller geometrischer Formen, die langsam schweben.",
        "Alles wirkt ruhig, doch im Schatten verbirgt sich etwas Unerwartetes.",
        "Die Umrisse sind mit Kreide auf leicht zerknittertes Papier gezeichnet.",
    ),
    "en": (
        "A picture in which the colours blend like in a child's dream.",
        "In the middle, a strange animal looks curiously at the viewer.",
        "The sky is full of geometric shapes drifting slowly.",
        "Everything seems calm, but something unexpected hides in the shadow.",
        "The outlines are drawn in chalk on slightly crumpled paper.",
    ),
}

_CONFIGS: Final = ("dada", "bauhaus", "expressionism", "surrealism", "haiku", "jugendsprache")
#: Current levels, and the older names (teens, adults, off) that older sessions still carry.
_SAFETY_LEVELS: Final = _weighted(
    (("kids", 35), ("youth", 30), ("adult", 12), ("research", 8), ("teens", 6), ("adults", 5),
     ("off", 4))
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Mode:
    """The models an execution mode uses: ``eco`` runs locally, ``fast`` through OpenRouter."""

    name: str
    backend: str
    translation_model: str
    interception_models: tuple[str, ...]
    speed: float  # multiplier on typical LLM durations


_MODES: Final = (
    _Mode("eco", "ollama", "local/mistral-nemo:latest",
          ("local/gpt-oss:20b", "local/mistral-nemo:latest", "local/gemma3:12b"), 3.0),
    _Mode("fast", "openrouter", "mistralai/mistral-nemo",
          ("gpt-oss", "anthropic/claude-3.5-haiku", "mistralai/mistral-medium-3.1"), 1.0),
)  # fmt: skip
_SAFETY_MODEL: Final = "local/llama-guard3:1b"


@dataclass(frozen=True, slots=True)
class _Output:
    """A stage-4 output config: what it produces, where, and how its result is referenced."""

    config: str
    item_type: str
    media_type: str
    backend: str
    model: str
    reference: str  # "uuid", "url", "view" (ComfyUI view URL) or "path"
    extension: str
    seconds: tuple[float, float]


_OUTPUTS: Final = (
    _Output("sd35_large", "output_image", "image", "comfyui", "unknown", "uuid", "png", (8, 45)),
    _Output("flux2", "output_image", "image", "comfyui", "unknown", "view", "png", (10, 60)),
    _Output("gemini_flash_image", "output_image", "image", "openrouter",
            "google/gemini-2.5-flash-image", "url", "png", (4, 20)),
    _Output("stableaudio_open", "output_audio", "audio", "comfyui", "unknown", "path", "wav",
            (20, 90)),
    _Output("acestep", "output_music", "music", "comfyui", "unknown", "uuid", "mp3", (30, 120)),
    _Output("wan22_t2v", "output_video", "video", "comfyui", "unknown", "path", "mp4", (60, 400)),
    _Output("hunyuan3d", "output_3d", "3d", "comfyui", "unknown", "path", "glb", (40, 200)),
)  # fmt: skip
#: Images dominate; every other medium turns up regularly.
_OUTPUT_POOL: Final = _OUTPUTS[:1] * 5 + _OUTPUTS[1:3] * 2 + _OUTPUTS[3:]
#: Planned upstream; ``output_animation`` also brings a media type the taxonomy does not know.
_ANIMATION: Final = _Output(
    "wan22_animate", "output_animation", "animation", "comfyui", "unknown", "path", "webp", (30, 90)
)

_FAILURES: Final = (
    (1, "ollama", "ConnectionError", "Ollama not reachable at localhost:11434"),
    (2, "openrouter", "HTTPError", "OpenRouter returned 429 Too Many Requests"),
    (2, "ollama", "TimeoutError", "Interception timed out after 120 s"),
    (4, "comfyui", "TimeoutError", "ComfyUI job timed out after 300 s"),
    (4, "comfyui", "RuntimeError", "Workflow node 'KSampler' failed: CUDA out of memory"),
)

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
            _safety_check(run, loop, safe=False)
            run.add(
                "stage3_blocked",
                3,
                content=rng.pick(_BLOCK_MESSAGES_STAGE3),
                loop_iteration=loop,
                model_used=_SAFETY_MODEL,
                backend="ollama",
                metadata={"safety_level": run.safety_level, "output_config": output.config},
            )
            continue
        _safety_check(run, loop, safe=True)
        _output(run, loop, output)
        produced = True
    return produced


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


# --- the demo store -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What :func:`write_demo_store` wrote: valid record files, and malformed files by kind."""

    valid: int
    malformed: Mapping[str, int] = field(default_factory=dict)

    @property
    def malformed_total(self) -> int:
        return sum(self.malformed.values())

    def __str__(self) -> str:
        return f"{self.valid:,} valid records and {self.malformed_total} malformed files"


def write_demo_store(
    directory: Path,
    count: int,
    *,
    seed: int = 0,
    malformed: bool = True,
    progress: Callable[[int], None] | None = None,
) -> DemoSummary:
    """Write ``count`` generated records (and, by default, one malformed file of each kind).

    The files are those of ``generate_records(count, seed=seed)``. ``progress`` is called with
    the number of records written so far, every :data:`PROGRESS_EVERY` records and at the end.
    The symlink kind points into a hidden sibling directory (``.<name>-outside``) that this
    function creates next to the store.
    """
    if count < 0:
        raise ValueError("count must not be negative")
    directory.mkdir(parents=True, exist_ok=True)
    _write_records(directory, count, seed, progress)
    if not malformed:
        return DemoSummary(valid=count)
    valid = count
    for kind in MALFORMED_KINDS:
        if kind == "duplicate_id" and count:
            _write_duplicate(directory, next(generate_records(1, seed=seed)))
        else:
            write_malformed(directory, kind)
            valid += kind == "duplicate_id"  # it wrote its own valid original
    return DemoSummary(valid=valid, malformed=dict.fromkeys(MALFORMED_KINDS, 1))


def _write_records(
    directory: Path, count: int, seed: int, progress: Callable[[int], None] | None
) -> None:
    for written, record in enumerate(generate_records(count, seed=seed), start=1):
        _write_bytes(directory / f"{record['execution_id']}.json", serialize_record(record))
        if progress is not None and (written % PROGRESS_EVERY == 0 or written == count):
            progress(written)


def _write_bytes(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


# --- malformed files ----------------------------------------------------------------------------

#: Every kind of file a tolerant reader must skip and report, with what it holds.
MALFORMED_KINDS: Final[dict[str, str]] = {
    "empty": "a zero-byte file, as seen just after the tracker truncated it",
    "truncated": "a real record cut mid-way where the tracker met unserialisable metadata",
    "invalid_utf8": "a record with bytes that are not UTF-8 (Latin-1 text, a stray byte, a cut "
    "multi-byte sequence)",
    "bom": "a valid record preceded by a UTF-8 byte order mark",
    "top_level_array": "a JSON array of records instead of one record object",
    "top_level_scalar": "a JSON string or number instead of a record object",
    "missing_field": "a record without a required field (execution_id, items or config_name)",
    "wrong_type": 'a field of the wrong type (stage "three", items {}, used_seed as a string)',
    "deep_nesting": "item metadata nested 5,000 levels deep",
    "nan_literal": "a NaN or Infinity literal where a number belongs (not JSON)",
    "oversize": "a valid-looking record padded past the size cap",
    "directory": "a directory whose name ends in .json",
    "symlink_outside": "a symbolic link to a valid record file outside the store",
    "duplicate_id": "a second file (<id>_copy.json, sorting after <id>.json) claiming an "
    "execution_id a valid file already has",
    "lone_surrogate": "valid JSON whose string holds an unpaired UTF-16 surrogate escape",
    "null_items": "a record whose items list is null",
}

_DEEP_NESTING: Final = 5000
_SURROGATES: Final = ("\\ud800", "\\udc00", "\\ud83d")
_MARKER: Final = "@@demo-marker@@"


@dataclass(frozen=True, slots=True)
class _Target:
    """Where and from what one malformed file is made."""

    directory: Path
    index: int
    record: dict[str, Any]
    execution_id: str  # kept apart: some kinds delete it from the record
    outside: Path
    size_cap: int

    def path(self, kind: str) -> Path:
        return self.directory / f"{self.execution_id}_{kind}.json"

    def write(self, kind: str, data: bytes) -> Path:
        path = self.path(kind)
        _write_bytes(path, data)
        return path

    def variant(self, options: tuple[_T, ...]) -> _T:
        return options[self.index % len(options)]

    def text_item(self) -> dict[str, Any]:
        items: list[dict[str, Any]] = self.record["items"]
        return next(item for item in items if item["item_type"] == "user_input_text")


def write_malformed(
    directory: Path,
    kind: str,
    *,
    index: int = 0,
    outside: Path | None = None,
    size_cap: int = 5 * 1024 * 1024,
) -> Path:
    """Write one malformed file of ``kind`` (see :data:`MALFORMED_KINDS`) and return its path.

    Names are ``<execution_id>_<kind>.json``; different ``index`` values give distinct files
    (and cycle through a kind's variants). ``symlink_outside`` writes its target record into
    ``outside`` (default: a hidden sibling ``.<store>-outside``); ``duplicate_id`` also writes
    the valid original it duplicates and returns the copy.
    """
    if kind not in MALFORMED_KINDS:
        raise ValueError(f"unknown malformed kind {kind!r}; known: {', '.join(MALFORMED_KINDS)}")
    seed = zlib.crc32(f"{kind}:{index}".encode())
    record = next(generate_records(1, seed=seed))
    target = _Target(
        directory=directory,
        index=index,
        record=record,
        execution_id=record["execution_id"],
        outside=outside or directory.parent / f".{directory.name}-outside",
        size_cap=size_cap,
    )
    return _BUILDERS[kind](target)


def _empty(target: _Target) -> Path:
    return target.write("empty", b"")


def _truncated(target: _Target) -> Path:
    """Stream the record with :mod:`json` as the tracker does, until it meets a datetime."""
    items = target.record["items"]
    items[target.index % len(items)]["metadata"]["started_at"] = datetime(2025, 12, 24, 9, 30)
    path = target.path("truncated")
    # The tracker's file stays cut off where json.dump raised.
    with path.open("w", encoding="utf-8") as stream, contextlib.suppress(TypeError):
        json.dump(target.record, stream, indent=2, sort_keys=True, ensure_ascii=False)
    return path


def _invalid_utf8(target: _Target) -> Path:
    item = target.text_item()
    item["content"] = _MARKER
    data = serialize_record(target.record)
    bad = target.variant(("Schöne Grüße aus Köln".encode("latin-1"), b"\xff", "한".encode()[:2]))
    return target.write("invalid_utf8", data.replace(_MARKER.encode(), bad))


def _bom(target: _Target) -> Path:
    return target.write("bom", b"\xef\xbb\xbf" + serialize_record(target.record))


def _top_level_array(target: _Target) -> Path:
    records = [target.record] * (target.index % 3 + 1)
    return target.write("top_level_array", serialize_record(records))


def _top_level_scalar(target: _Target) -> Path:
    values: tuple[object, ...] = (
        target.record["execution_id"],
        target.index,
        target.record["total_execution_time"],
    )
    return target.write("top_level_scalar", serialize_record(target.variant(values)))


def _missing_field(target: _Target) -> Path:
    del target.record[target.variant(("execution_id", "items", "config_name"))]
    return target.write("missing_field", serialize_record(target.record))


def _wrong_type(target: _Target) -> Path:
    variant = target.index % 3
    if variant == 0:
        target.record["items"][-1]["stage"] = "three"
    elif variant == 1:
        target.record["items"] = {}
    else:
        target.record["used_seed"] = "12345"
    return target.write("wrong_type", serialize_record(target.record))


def _deep_nesting(target: _Target) -> Path:
    target.text_item()["metadata"] = {"nested": _MARKER}
    opening, closing = target.variant((('{"d":', "}"), ("[", "]")))
    nested = opening * _DEEP_NESTING + "0" + closing * _DEEP_NESTING
    data = serialize_record(target.record).replace(f'"{_MARKER}"'.encode(), nested.encode())
    return target.write("deep_nesting", data)


def _nan_literal(target: _Target) -> Path:
    value = target.variant((float("nan"), float("inf"), float("-inf")))
    if target.index % 2:
        target.record["items"][-1]["execution_time"] = value
    else:
        target.record["total_execution_time"] = value
    return target.write("nan_literal", serialize_record(target.record))


def _oversize(target: _Target) -> Path:
    item = target.text_item()
    filler = " ".join(_INTERCEPTION_SENTENCES) + " "
    missing = target.size_cap - len(serialize_record(target.record)) + 1
    item["content"] += filler * max(1, -(-missing // len(filler)))
    return target.write("oversize", serialize_record(target.record))


def _directory(target: _Target) -> Path:
    path = target.path("directory")
    path.mkdir(exist_ok=True)
    return path


def _symlink_outside(target: _Target) -> Path:
    target.outside.mkdir(parents=True, exist_ok=True)
    original = target.outside / f"{target.record['execution_id']}.json"
    _write_bytes(original, serialize_record(target.record))
    path = target.path("symlink_outside")
    path.unlink(missing_ok=True)
    path.symlink_to(original.resolve())
    return path


def _duplicate_id(target: _Target) -> Path:
    _write_bytes(
        target.directory / f"{target.record['execution_id']}.json",
        serialize_record(target.record),
    )
    return _write_duplicate(target.directory, target.record)


def _write_duplicate(directory: Path, original: dict[str, Any]) -> Path:
    """Write ``<id>_copy.json``: a different, valid record claiming ``original``'s id."""
    copy = {**original, "user_id": "anonymous", "session_id": "default"}
    copy["total_execution_time"] = round(float(original["total_execution_time"]) + 1.0, 3)
    path = directory / f"{original['execution_id']}_copy.json"
    _write_bytes(path, serialize_record(copy))
    return path


def _lone_surrogate(target: _Target) -> Path:
    item = target.text_item()
    item["content"] = f"Ein Gedicht {_MARKER}"
    escape = target.variant(_SURROGATES).encode()
    data = serialize_record(target.record).replace(_MARKER.encode(), escape)
    return target.write("lone_surrogate", data)


def _null_items(target: _Target) -> Path:
    target.record["items"] = None
    return target.write("null_items", serialize_record(target.record))


_BUILDERS: Final[dict[str, Callable[[_Target], Path]]] = {
    "empty": _empty,
    "truncated": _truncated,
    "invalid_utf8": _invalid_utf8,
    "bom": _bom,
    "top_level_array": _top_level_array,
    "top_level_scalar": _top_level_scalar,
    "missing_field": _missing_field,
    "wrong_type": _wrong_type,
    "deep_nesting": _deep_nesting,
    "nan_literal": _nan_literal,
    "oversize": _oversize,
    "directory": _directory,
    "symlink_outside": _symlink_outside,
    "duplicate_id": _duplicate_id,
    "lone_surrogate": _lone_surrogate,
    "null_items": _null_items,
}
