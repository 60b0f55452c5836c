"""Text pools and weighted picks behind the demo generator (storage.demo.records).

Fixed pools (prompts in eight languages, interception sentences, Stille Post chains, configs,
models, outputs) keep generation fast and deterministic; weights mirror what a workshop produces.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

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
