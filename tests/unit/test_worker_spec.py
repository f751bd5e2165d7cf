import pytest

from fscommon.worker_spec import SpecError, WorkerSpec


def _spec(**kw):
    base = dict(
        function="f",
        replica=0,
        wasm_path="/x.wasm",
        wasm_sha256="00",
        kind="abi",
        inputs=["in"],
        output="out",
        subscription="fs-f",
        pulsar_url="pulsar://127.0.0.1:6650",
        events_endpoint="ipc:///tmp/e.sock",
    )
    base.update(kw)
    return WorkerSpec(**base)


def test_roundtrip():
    spec = _spec(config={"a": "b"})
    assert WorkerSpec.from_json(spec.to_json()) == spec


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("not json", "not JSON"),
        ("[]", "JSON object"),
        ('{"function": "f"}', "incomplete"),
        (_spec().to_json()[:-1] + ',"bogus":1}', "unknown fields: bogus"),
        (_spec(inputs=[]).to_json(), "spec.inputs"),
        (_spec(replica=-1).to_json(), "spec.replica"),
    ],
)
def test_bad_specs(text, fragment):
    with pytest.raises(SpecError, match=fragment):
        WorkerSpec.from_json(text)
