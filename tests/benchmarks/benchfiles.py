"""Small benchmark fixtures written in each benchmark's published layout (sources cited per writer).

Every writer produces the files a user downloads from the benchmark's
repository or dataset card, shrunk to a handful of items, with the same names,
columns and encodings (see the reader modules of :mod:`gcr.benchmarks`).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from PIL import Image

#: Lines of GenEval's prompts/evaluation_metadata.jsonl, one per tag family (create_prompts.py).
GENEVAL_ROWS: list[dict] = [
    {"tag": "single_object", "include": [{"class": "bench", "count": 1}], "prompt": "a photo of a bench"},
    {
        "tag": "counting",
        "include": [{"class": "clock", "count": 2}],
        "exclude": [{"class": "clock", "count": 3}],
        "prompt": "a photo of two clocks",
    },
    {
        "tag": "position",
        "include": [{"class": "car", "count": 1}, {"class": "dog", "count": 1, "position": ["left of", 0]}],
        "prompt": "a photo of a dog left of a car",
    },
    {
        "tag": "color_attr",
        "include": [
            {"class": "wine glass", "count": 1, "color": "purple"},
            {"class": "apple", "count": 1, "color": "black"},
        ],
        "prompt": "a photo of a purple wine glass and a black apple",
    },
]


def write_geneval(root: Path) -> Path:
    """``<root>/prompts/evaluation_metadata.jsonl``, written as create_prompts.py does (print(json.dumps))."""
    folder = root / "prompts"
    folder.mkdir(parents=True)
    path = folder / "evaluation_metadata.jsonl"
    with path.open("w") as fp:
        for sample in GENEVAL_ROWS:
            print(json.dumps(sample), file=fp)
    return path


DPG_HEADER = [
    "item_id", "text", "keywords", "proposition_id", "dependency", "category_broad",
    "category_detailed", "tuple", "question_natural_language",
]  # fmt: skip
DPG_ITEMS = {
    "1": "A red pickup truck parked on a sandy beach at dusk, palm trees behind it.",
    "partiprompts12": "A cozy reading nook with a green armchair and a tall brass lamp.",
}


def write_dpg(root: Path) -> Path:
    """``dpg_bench.csv`` (one row per question, columns of compute_dpg_bench.py) and ``prompts/<id>.txt``."""
    root.mkdir(parents=True, exist_ok=True)
    truck, nook = DPG_ITEMS["1"], DPG_ITEMS["partiprompts12"]
    rows = [
        ["1", truck, "truck", "1", "0", "entity", "whole", "entity - whole (truck)", "Is there a truck?"],
        ["1", truck, "red", "2", "1", "attribute", "color", "attribute - color (truck, red)",
         "Is the truck red?"],
        ["1", truck, "beach", "3", "0", "entity", "whole", "entity - whole (beach)", "Is there a beach?"],
        ["partiprompts12", nook, "armchair", "1", "0", "entity", "whole",
         "entity - whole (armchair)", "Is there an armchair?"],
        ["partiprompts12", nook, "lamp", "2", "0", "relation", "spatial",
         "relation - spatial (lamp, armchair, next to)", "Is the lamp next to the armchair?"],
    ]  # fmt: skip
    path = root / "dpg_bench.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(DPG_HEADER)
        writer.writerows(rows)
    prompts = root / "prompts"
    prompts.mkdir()
    for item_id, text in DPG_ITEMS.items():
        (prompts / f"{item_id}.txt").write_text(text)  # the whole file is the prompt, no newline
    return path


T2I_FILES = {
    "color_val.txt": [
        "a green bench and a blue bowl",
        "a blue bench and a green bowl",
        "a red car and a blue cup",
    ],
    "spatial_val.txt": ["a horse on the right of a car", "a cat on the left of a dog\textra column"],
}


def write_t2icompbench(root: Path) -> Path:
    """``examples/dataset/<category>_val.txt``: one prompt per line."""
    folder = root / "examples" / "dataset"
    folder.mkdir(parents=True)
    for name, lines in T2I_FILES.items():
        (folder / name).write_text("\n".join(lines) + "\n")
    return folder


def png(color: tuple[int, int, int], size: tuple[int, int] = (24, 16)) -> Image.Image:
    return Image.new("RGB", size, color)


#: GEdit-Bench rows: (key, task_type, language, instruction, intersection).
_K1, _K2 = "3a9853285c981f9ec42fae7c9ba938f8", "be45c39b3bcc9d082051c13b5300dde1"
GEDIT_ROWS = [
    (_K1, "background_change", "en", "Change the background to a beach.", True),
    (_K1, "background_change", "cn", "把背景换成海滩。", True),
    (_K2, "subject-add", "en", "Add a red balloon in the sky.", False),
    (_K2, "subject-add", "cn", "在天空中加一个红气球。", False),
]


def gedit_dataset():
    """The rows as a ``datasets.Dataset`` with the card's features (generate_image_example.py)."""
    import datasets

    features = datasets.Features(
        {
            "task_type": datasets.Value("string"),
            "key": datasets.Value("string"),
            "instruction": datasets.Value("string"),
            "instruction_language": datasets.Value("string"),
            "input_image": datasets.Image(),
            "input_image_raw": datasets.Image(),
            "Intersection_exist": datasets.Value("bool"),
        }
    )
    data: dict[str, list] = {name: [] for name in features}
    for i, (key, task_type, lang, instruction, inter) in enumerate(GEDIT_ROWS):
        data["task_type"].append(task_type)
        data["key"].append(key)
        data["instruction"].append(instruction)
        data["instruction_language"].append(lang)
        data["input_image"].append(png((10 * i, 100, 50), (16, 16)))  # the judge's source (SRCIMG)
        data["input_image_raw"].append(png((10 * i, 200, 90), (48, 32)))  # what the model edits
        data["Intersection_exist"].append(inter)
    return datasets.Dataset.from_dict(data, features=features)


def write_gedit(root: Path, kind: str = "parquet") -> Path:
    """As downloaded from the Hub (``data/train-00000-of-00001.parquet``) or written by ``save_to_disk``."""
    ds = gedit_dataset()
    if kind == "parquet":
        (root / "data").mkdir(parents=True)
        ds.to_parquet(str(root / "data" / "train-00000-of-00001.parquet"))
    else:
        ds.save_to_disk(str(root))
    return root


IMGEDIT_ENTRIES = {
    "1082": {
        "id": "animal/000342021.jpg",
        "prompt": "Change the tortoise's shell texture to a smooth surface.",
        "edit_type": "alter",
    },
    "673": {
        "id": "style/000278574.jpg",
        "prompt": "Transfer the image into a traditional ukiyo-e style.",
        "edit_type": "style",
    },
    "97": {
        "id": "for_add/000236569.jpg",
        "prompt": "Add an elegant chandelier in the center of the ceiling.",
        "edit_type": "add",
    },
}


def write_imgedit(root: Path) -> Path:
    """``basic_edit.json`` keyed by item key, with the original JPEGs under the image root."""
    root.mkdir(parents=True, exist_ok=True)
    for i, entry in enumerate(IMGEDIT_ENTRIES.values()):
        image = root / entry["id"]
        image.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        png((40 * i, 80, 120), (32, 24)).save(buffer, format="JPEG")
        image.write_bytes(buffer.getvalue())
    path = root / "basic_edit.json"
    path.write_text(json.dumps(IMGEDIT_ENTRIES, indent=4))
    return path
