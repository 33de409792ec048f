"""gcr.typed_config: the one loader RL, SFT, PARROT and refine settings go through."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from gcr.errors import ConfigError
from gcr.typed_config import apply_overrides, from_mapping, read_config_file, typed_fields


@dataclass
class Inner:
    name: str
    weight: float = 1.0


@dataclass
class Outer:
    count: int = 1
    ratio: float = 0.5
    mode: Literal["a", "b"] = "a"
    tags: list[str] = field(default_factory=list)
    pair: tuple[int, str] = (0, "")
    many: tuple[int, ...] = ()
    limits: dict[str, float] | None = None
    maybe: int | None = None
    inner: list[Inner] = field(default_factory=list)
    flag: bool = False

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ConfigError("count must be at least 1")


def test_values_are_converted_to_the_field_types() -> None:
    built = from_mapping(
        Outer,
        {
            "count": 3.0,
            "ratio": "2e-4",  # YAML 1.1 leaves this a string
            "mode": "b",
            "tags": "solo",  # one string for a list
            "pair": [1, "x"],
            "many": [1, 2],
            "limits": {"a": 1},
            "inner": [{"name": "n", "weight": 2}],
            "flag": True,
        },
        "t.yaml",
    )
    assert built == Outer(
        count=3,
        ratio=2e-4,
        mode="b",
        tags=["solo"],
        pair=(1, "x"),
        many=(1, 2),
        limits={"a": 1.0},
        inner=[Inner("n", 2.0)],
        flag=True,
    )
    assert isinstance(built.count, int) and isinstance(built.limits["a"], float)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"cuont": 1}, "unknown setting 'cuont' in t.yaml; did you mean 'count'?"),
        ({"zzz": 1}, "unknown setting 'zzz' in t.yaml (known: count, ratio"),
        ({"count": 1.5}, "count in t.yaml must be an integer, got 1.5"),
        ({"count": True}, "count in t.yaml must be an integer, got True"),
        ({"mode": "c"}, "mode in t.yaml must be one of 'a', 'b', got 'c'"),
        ({"flag": "yes"}, "flag in t.yaml must be true or false, got 'yes'"),
        ({"pair": [1]}, "pair in t.yaml must be a list of 2"),
        ({"limits": {"a": "x"}}, "limits.a in t.yaml must be a number, got 'x'"),
        ({"inner": [{"name": "n", "wieght": 1}]}, "unknown setting 'inner.0.wieght' in t.yaml"),
        ({"inner": [{"weight": 1}]}, "invalid settings in inner.0 in t.yaml"),
        ({"count": 0}, "count must be at least 1"),
        ([1, 2], "t.yaml must be a mapping of settings, not a list"),
    ],
)
def test_errors_name_the_key_and_the_source(data: object, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_mapping(Outer, data, "t.yaml")
    assert message in str(info.value)


def test_typed_fields_checks_without_building() -> None:
    assert typed_fields(Outer, {"count": 0}, "flags") == {"count": 0}  # __post_init__ is not run yet
    with pytest.raises(ConfigError, match="count in flags must be an integer"):
        typed_fields(Outer, {"count": "x"}, "flags")


def test_yaml_and_json_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("count: 2\n# a comment\n", encoding="utf-8")
    (tmp_path / "a.json").write_text('{"count": 2}', encoding="utf-8")
    (tmp_path / "empty.yaml").write_text("", encoding="utf-8")
    (tmp_path / "bad.json").write_text("{count: 2}", encoding="utf-8")
    (tmp_path / "list.json").write_text("[1]", encoding="utf-8")
    (tmp_path / "code.yaml").write_text("!!python/object/apply:os.system ['true']\n", encoding="utf-8")
    assert read_config_file(tmp_path / "a.yaml") == read_config_file(tmp_path / "a.json") == {"count": 2}
    assert read_config_file(tmp_path / "empty.yaml") == {}
    with pytest.raises(ConfigError, match="not valid JSON"):
        read_config_file(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="must hold a mapping of settings, not a list"):
        read_config_file(tmp_path / "list.json")
    with pytest.raises(ConfigError, match="not valid YAML"):  # never constructs Python objects
        read_config_file(tmp_path / "code.yaml")
    with pytest.raises(ConfigError, match="config file not found"):
        read_config_file(tmp_path / "none.yaml")


def test_dotted_overrides() -> None:
    data = {"inner": [{"name": "n"}], "count": 1}
    out = apply_overrides(data, ["inner.0.weight=3", "count=4", "limits.a=0.5"])
    assert out == {"inner": [{"name": "n", "weight": 3}], "count": 4, "limits": {"a": 0.5}}
    assert data == {"inner": [{"name": "n"}], "count": 1}
    assert from_mapping(Outer, out, "t").inner == [Inner("n", 3.0)]
