"""Label Studio labelling configs, one per queue task, and the task data / result shapes they expect.

Every config has one single-choice control named `label` (what consensus is computed on); text queues may
add `category`, caption and record queues a `correction` text area (the fixed caption / the record note).
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from schemas.labeling import DECISION_OF_LABEL, QueueConfig  # noqa: F401 - re-exported

LABEL_CONTROL = "label"
CATEGORY_CONTROL = "category"
CORRECTION_CONTROL = "correction"

DEFAULT_CHOICES = {
    "text_classification": ["keep", "drop"],
    "caption_check": ["correct", "wrong"],
    "record_review": ["valid", "invalid"],
    "pair_check": ["same", "different"],
}

# what a human label means for the record's keep/drop decision (image classes say nothing about it)

# the object tag each task kind shows, and the task data key it reads
OBJECT = {
    "text_classification": ("Text", "text"),
    "image_classification": ("Image", "image"),
    "caption_check": ("Image", "image"),
    "record_review": ("Text", "record"),
    "pair_check": ("HyperText", "a"),  # kept record (a) beside a dropped copy (b), text or <img>
}


def choices_of(queue: QueueConfig) -> list[str]:
    """The label values of a queue (its own, or the task kind's defaults)."""
    if queue.choices:
        return list(queue.choices)
    if queue.task == "image_classification":
        raise ValueError(f"queue {queue.name!r}: image_classification needs its classes in `choices`")
    return list(DEFAULT_CHOICES[queue.task])


def _choices(name: str, to: str, values: list[str], required: bool) -> str:
    opts = "".join(f"<Choice value={quoteattr(v)}/>" for v in values)
    req = ' required="true"' if required else ""
    head = f'<Choices name="{name}" toName="{to}" choice="single-radio"{req} showInline="true">'
    return f"{head}{opts}</Choices>"


def _textarea(to: str) -> str:
    return f'<TextArea name="{CORRECTION_CONTROL}" toName="{to}" maxSubmissions="1" editable="true"/>'


def label_config(queue: QueueConfig) -> str:
    """The labelling-config XML of a queue's project."""
    tag, key = OBJECT[queue.task]
    labels = choices_of(queue)
    parts = ["<View>"]
    if queue.task == "text_classification":
        parts.append(f'<Text name="{key}" value="${key}"/>')
        parts.append('<Header value="Keep this text in the dataset?"/>')
        parts.append(_choices(LABEL_CONTROL, key, labels, True))
        if queue.categories:
            parts.append('<Header value="Category"/>')
            parts.append(_choices(CATEGORY_CONTROL, key, list(queue.categories), False))
    elif queue.task == "image_classification":
        parts.append(f'<Image name="{key}" value="${key}"/>')
        parts.append('<Header value="Class of the image"/>')
        parts.append(_choices(LABEL_CONTROL, key, labels, True))
    elif queue.task == "caption_check":
        parts.append(f'<Image name="{key}" value="${key}"/>')
        parts.append('<Header value="Caption"/><Text name="caption" value="$caption"/>')
        parts.append('<Header value="Is the caption right?"/>')
        parts.append(_choices(LABEL_CONTROL, key, labels, True))
        parts.append('<Header value="If not, write the right caption"/>')
        parts.append(_textarea(key))
    elif queue.task == "pair_check":
        parts.append('<Header value="Kept record"/><HyperText name="a" value="$a"/>')
        parts.append('<Header value="Dropped as its duplicate"/><HyperText name="b" value="$b"/>')
        parts.append('<Header value="Are these the same content (a true duplicate)?"/>')
        parts.append(_choices(LABEL_CONTROL, key, labels, True))
    else:  # record_review
        parts.append(f'<Text name="{key}" value="${key}"/>')
        parts.append('<Header value="Is this record valid?"/>')
        parts.append(_choices(LABEL_CONTROL, key, labels, True))
        parts.append('<Header value="Note or corrected value"/>')
        parts.append(_textarea(key))
    parts.append("</View>")
    return "".join(parts)


def object_name(queue: QueueConfig) -> str:
    """Name of the object tag the queue's controls point at."""
    return OBJECT[queue.task][1]


def choice_result(queue: QueueConfig, value: str, control: str = LABEL_CONTROL) -> dict:
    """One result item choosing `value` in a choices control (for predictions and annotations)."""
    return {
        "from_name": control,
        "to_name": object_name(queue),
        "type": "choices",
        "value": {"choices": [value]},
    }


def text_result(queue: QueueConfig, text: str, control: str = CORRECTION_CONTROL) -> dict:
    """One result item filling a text area."""
    return {
        "from_name": control,
        "to_name": object_name(queue),
        "type": "textarea",
        "value": {"text": [text]},
    }


def parse_result(result: list[dict]) -> dict[str, str | None]:
    """`{"label", "category", "correction"}` read from an annotation's result items (missing = None)."""
    out: dict[str, str | None] = {LABEL_CONTROL: None, CATEGORY_CONTROL: None, CORRECTION_CONTROL: None}
    for item in result or []:
        name = item.get("from_name")
        value = item.get("value") or {}
        if name in (LABEL_CONTROL, CATEGORY_CONTROL) and value.get("choices"):
            out[name] = str(value["choices"][0])
        elif name == CORRECTION_CONTROL and value.get("text"):
            t = value["text"]
            out[name] = "\n".join(map(str, t)) if isinstance(t, list) else str(t)
    return out
