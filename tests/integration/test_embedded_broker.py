"""fsd with no broker configured runs and supervises a real Pulsar standalone itself."""

from __future__ import annotations

import pytest

from tests.helpers import EXAMPLES, Fsd, free_port, pid_alive, unique, wait_for
from tests.integration.test_walkthrough import produce_and_expect

pytestmark = pytest.mark.integration


def test_embedded_standalone_lifecycle(workdir):
    ports = ["--pulsar-port", str(free_port()), "--pulsar-web-port", str(free_port())]
    fsd = Fsd(workdir, None, extra=ports).start(timeout=180)
    try:
        info = fsd.ctl_json("info")
        assert info["embedded_broker"] is True
        assert info["pulsar_url"] == f"pulsar://127.0.0.1:{ports[1]}"
        broker_pid = info["broker_pid"]
        assert pid_alive(broker_pid)
        assert (fsd.state_dir / "pulsar" / "metadata").is_dir(), "broker data is under state dir"

        name, inp, out = unique("emb"), unique("in"), unique("out")
        wasm = str(EXAMPLES / "basic" / "c" / "basic.wasm")
        assert fsd.ctl("create", "-n", name, "-a", wasm, "-i", inp, "-o", out).returncode == 0
        produce_and_expect(
            fsd, inp, out, '{"name":"e","money":1}', '{"name":"e","money":2,"expected":0}'
        )
        worker_pid = fsd.status(name)["replicas"][0]["pid"]

        # kill -9: neither the broker nor the worker may outlive fsd.
        fsd.kill()
        wait_for(lambda: not pid_alive(worker_pid), 10, "the worker to die with fsd")
        wait_for(lambda: not pid_alive(broker_pid), 30, "the broker to die with fsd")

        fsd.start(timeout=180)
        wait_for(lambda: fsd.status(name)["replicas"][0]["state"] == "RUNNING", 60, "restore")
        produce_and_expect(
            fsd, inp, out, '{"name":"f","money":5}', '{"name":"f","money":6,"expected":0}'
        )
        broker_pid = fsd.ctl_json("info")["broker_pid"]
        assert fsd.stop() == 0
        assert not pid_alive(broker_pid), "SIGTERM stops the embedded broker too"
    finally:
        fsd.kill()
