import pytest

from fsd.function_spec import SpecInvalid, validate_create_args

BASE = {"name": "example", "inputs": ["example-input"], "output": "example-output"}


def test_valid_spec_is_normalised():
    out = validate_create_args({**BASE, "inputs": "example-input"})
    options = out.pop("options")
    assert out == {**BASE, "replicas": 1, "config": {}, "autoscale": None}
    assert options["guarantee"] == "at-least-once" and options["max_retries"] == 3


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        ({"name": "a/b"}, "invalid function name 'a/b'"),
        ({"name": "../etc"}, "invalid function name"),
        ({"name": ""}, "invalid function name"),
        ({"name": 5}, "invalid function name"),
        ({"replicas": 0}, "replicas must be an integer from 1"),
        ({"replicas": -3}, "replicas must be an integer from 1"),
        ({"replicas": True}, "replicas must be an integer"),
        ({"replicas": 10_000}, "replicas must be an integer from 1 to 64"),
        ({"inputs": []}, "at least one input topic"),
        ({"options": {"ordering": "total"}}, "ordering must be one of"),
        (
            {"options": {"input_pattern": "persistent://public/default/x-.*"}},
            "not both",
        ),
        ({"inputs": ["bad topic"]}, "invalid input topic"),
        ({"output": "example-input", "inputs": ["example-input"]}, "would loop"),
        ({"config": {"a": 1}}, "config must map strings"),
    ],
)
def test_invalid_specs_name_the_field(patch, fragment):
    with pytest.raises(SpecInvalid, match=fragment.replace("(", r"\(")):
        validate_create_args({**BASE, **patch})


def test_full_topic_names_are_accepted():
    out = validate_create_args({**BASE, "output": "persistent://public/default/out"})
    assert out["output"] == "persistent://public/default/out"


def test_a_trailing_newline_is_not_part_of_a_valid_name_or_topic():
    # '$' matches before a final newline: the checks must match the whole value.
    from fsd.function_spec import validate_name, validate_topic

    with pytest.raises(SpecInvalid):
        validate_name("victim\n")
    with pytest.raises(SpecInvalid):
        validate_topic("topic\n", "input")


EO = {"guarantee": "effectively-once", "ordering": "strict"}


@pytest.mark.parametrize(
    "patch",
    [
        {"replicas": 2},
        {"autoscale": {"min_replicas": 1, "max_replicas": 3}},
    ],
)
def test_effectively_once_runs_one_replica(patch):
    # Its output producer's name is fixed per input topic: a Failover switch between live
    # replicas leaves it with the old one (docs/guarantees.md).
    with pytest.raises(SpecInvalid, match="effectively-once, which runs one replica"):
        validate_create_args({**BASE, "options": EO, **patch})
    assert validate_create_args({**BASE, "options": EO})["replicas"] == 1
    assert validate_create_args({**BASE, **patch})["replicas"] >= 1  # at-least-once scales
