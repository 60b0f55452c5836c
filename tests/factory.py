"""One small factory for records in the on-disk shape, used by every test package.

``record_dict`` returns exactly what the upstream writer would put in a file (a dict to be dumped
with ``indent=2, sort_keys=True, ensure_ascii=False``); ``record`` returns the validated model.
Shapes follow the record-format page: text only, one image, Stille Post, N outputs, blocked in
stage 1, blocked in stage 3, failed.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from storage.models import ExecutionRecord

Shape = Literal["text", "image", "stillepost", "multi", "blocked1", "blocked3", "error"]

BASE_TIME = datetime(2025, 11, 3, 14, 30, 25, 123456)


def item_dict(
    seq: int,
    item_type: str,
    *,
    stage: int,
    at: datetime,
    media_type: str = "text",
    content: str | None = None,
    stage_iteration: int | None = None,
    loop_iteration: int | None = None,
    model_used: str | None = None,
    backend_type: str | None = None,
    config_used: str | None = None,
    file_path: str | None = None,
    execution_time: float | None = None,
    metadata: dict[str, Any] | None = None,
    backend_key: str = "backend_type",
) -> dict[str, Any]:
    """One item with all 14 keys, as the writer produces it."""
    return {
        backend_key: backend_type,
        "config_used": config_used,
        "content": content,
        "execution_time": execution_time,
        "file_path": file_path,
        "item_type": item_type,
        "loop_iteration": loop_iteration,
        "media_type": media_type,
        "metadata": metadata if metadata is not None else {},
        "model_used": model_used,
        "sequence_number": seq,
        "stage": stage,
        "stage_iteration": stage_iteration,
        "timestamp": at.isoformat(),
    }


def record_dict(
    execution_id: str = "exec_20251103_143025_0000abcd",
    *,
    shape: Shape = "image",
    at: datetime = BASE_TIME,
    config_name: str | None = None,
    user_id: str = "anonymous",
    session_id: str = "default",
    safety_level: str = "kids",
    execution_mode: str = "eco",
    used_seed: int | None = 42,
    prompt: str = "Ein Haus aus Wolken",
    outputs: int = 2,
    iterations: int = 8,
    backend_key: str = "backend_type",
    extra_items: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A whole record of the given shape."""
    items: list[dict[str, Any]] = []
    clock = [at]

    def add(item_type: str, stage: int, **kw: Any) -> None:
        clock[0] += timedelta(milliseconds=250)
        items.append(
            item_dict(
                len(items) + 1, item_type, stage=stage, at=clock[0], backend_key=backend_key, **kw
            )
        )

    config = config_name or ("stillepost" if shape == "stillepost" else "dada")
    add("pipeline_start", 0, media_type="metadata", metadata={"config": config})
    add("user_input_text", 1, content=prompt)
    if shape == "blocked1":
        add(
            "stage1_blocked",
            1,
            content="Blocked: legal symbols violation (§86a)",
            metadata={"reason": "legal_symbols"},
        )
    else:
        add(
            "translation_result",
            1,
            content=f"EN: {prompt}",
            model_used="local/mistral-nemo:latest",
            backend_type="ollama",
            execution_time=1.25,
        )
        if shape == "stillepost":
            for n in range(1, iterations + 1):
                add(
                    "interception_iteration",
                    2,
                    content=f"Iteration {n}: {prompt}",
                    stage_iteration=n,
                    model_used="gpt-oss",
                    backend_type="openrouter",
                    config_used="stillepost",
                    execution_time=2.0,
                    metadata={"language": ["de", "fr", "ko", "hi", "ar", "ja", "es", "en"][n % 8]},
                )
        add(
            "interception_final",
            2,
            content=f"Final: {prompt}",
            model_used="gpt-oss",
            backend_type="openrouter",
            config_used=config,
            execution_time=3.5,
        )
        if shape == "error":
            add("pipeline_error", 2, content="Backend timeout after 120 s")
        elif shape != "text":
            count = 1 if shape in {"image", "blocked3"} else outputs
            for loop in range(1, count + 1):
                if shape == "blocked3":
                    add(
                        "stage3_blocked",
                        3,
                        content="Unsafe for the age group",
                        loop_iteration=loop,
                        model_used="local/llama-guard3:1b",
                        backend_type="ollama",
                        metadata={"safety_level": safety_level},
                    )
                    continue
                add(
                    "stage3_safety_check",
                    3,
                    loop_iteration=loop,
                    model_used=None,
                    backend_type=None,
                    metadata={"safe": True, "method": "fast_path"},
                )
                add(
                    "output_image",
                    4,
                    media_type="image",
                    loop_iteration=loop,
                    file_path="3f2c9a4e-1b7d-4c51-9e0a-6a1f0e6d2b7c",
                    config_used="sd35_large" if loop == 1 else "flux2",
                    model_used="unknown",
                    backend_type="comfyui",
                    execution_time=12.5,
                    metadata={"seed": used_seed},
                )
        if shape not in {"error", "blocked3"}:
            add("pipeline_complete", 5, media_type="metadata")
    for extra in extra_items or []:
        items.append({**extra, "sequence_number": len(items) + 1})
    total = round(sum(float(i["execution_time"] or 0) for i in items) + 0.5, 3)
    return {
        "config_name": config,
        "execution_id": execution_id,
        "execution_mode": execution_mode,
        "items": items,
        "safety_level": safety_level,
        "session_id": session_id,
        "taxonomy_version": "1.0",
        "timestamp": at.isoformat(),
        "total_execution_time": total,
        "used_seed": used_seed,
        "user_id": user_id,
    }


def record(**kwargs: Any) -> ExecutionRecord:
    """The validated model of ``record_dict(**kwargs)``."""
    return ExecutionRecord.model_validate(record_dict(**kwargs))


def dump(data: dict[str, Any]) -> bytes:
    """Serialise exactly as the upstream writer does."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8")


def write_record(store: Path, data: dict[str, Any], name: str | None = None) -> Path:
    """Write ``data`` into ``store`` as ``<execution_id>.json`` (or ``name``)."""
    path = store / (name or f"{data['execution_id']}.json")
    path.write_bytes(dump(data))
    return path
