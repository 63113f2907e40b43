"""The query layout CogAgent-9B-20241220 was tuned on (served elsewhere, e.g. by vLLM).

The 9B model takes no chat history; earlier steps travel inside the query as numbered lines of
``<grounded operation>\\t<action sentence>``, followed by the platform and the answer format it should use.
Getting this layout exactly right matters: the model was tuned on it and drifts when it changes.
"""

from __future__ import annotations

from typing import Sequence

PLATFORMS = ("WIN", "Mac", "Mobile")
ANSWER_FORMATS = (
    "Action-Operation-Sensitive",
    "Status-Plan-Action-Operation",
    "Status-Action-Operation-Sensitive",
    "Status-Action-Operation",
    "Action-Operation",
)


def build_query_9b(task: str, history: Sequence[tuple[str, str]] = (), platform: str = "WIN",
                   answer_format: str = "Action-Operation-Sensitive") -> str:
    """``history`` holds (grounded operation, action sentence) pairs of the earlier steps, oldest first."""
    if platform not in PLATFORMS:
        raise ValueError(f"platform must be one of {', '.join(PLATFORMS)}, got {platform!r}")
    if answer_format not in ANSWER_FORMATS:
        raise ValueError(f"answer format must be one of {', '.join(ANSWER_FORMATS)}, got {answer_format!r}")
    history_text = "\nHistory steps: "
    for index, (operation, action) in enumerate(history):
        history_text += f"\n{index}. {operation}\t{action}"
    return f"Task: {task}{history_text}\n(Platform: {platform})\n(Answer in {answer_format} format.)"
