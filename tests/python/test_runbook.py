"""docs/runbooks/datablock-recovery.md: every ```python snippet is run against a block with the
failure its section describes (staged by crashing the C++ CLI at failpoints), and the failure
must be gone afterwards. A section with a snippet but no drill here fails."""
import os
import pathlib
import re
import signal
import subprocess
import uuid

import pytest

import warden
import warden.recovery as recovery

WARDEN = os.environ.get("WARDEN_CLI", "")
RUNBOOK = pathlib.Path(__file__).resolve().parents[2] / "docs/runbooks/datablock-recovery.md"


def snippets():
    """(section title, code) for every ```python block, in order."""
    found, title = [], None
    for part in re.split(r"^(## .*)$", RUNBOOK.read_text(), flags=re.M):
        if part.startswith("## "):
            title = part[3:]
            continue
        for code in re.findall(r"^```python\n(.*?)^```", part, flags=re.M | re.S):
            found.append((title, code))
    return found


def cli(*args, failpoints=None):
    env = dict(os.environ)
    if failpoints:
        env["WARDEN_FAILPOINTS"] = failpoints
    return subprocess.run([WARDEN, *args], capture_output=True, text=True, env=env, timeout=60)


def crash(*args, failpoint):
    result = cli(*args, failpoints=f"{failpoint}=crash")
    assert result.returncode == -signal.SIGKILL, result.stderr


def stage_stuck_writer(name):
    crash("block", "write", name, "--data", "x", "--slot", "0",
          failpoint="block.commit.before_publish")
    return []


def check_stuck_writer(name, keep):
    assert recovery.diagnose(name, slot=0)["slots"][0]["is_stuck"] is False


def stage_stuck_readers(name):
    assert cli("block", "write", name, "--data", "v1", "--slot", "0").returncode == 0
    crash("block", "read", name, "--slot", "0", failpoint="block.read.while_holding")
    live = warden.Consumer.open(name, heartbeat_interval=0)
    return [live, live.read_slot(0, timeout=5)]  # a live reader that never lets go


def check_stuck_readers(name, keep):
    assert recovery.diagnose(name, slot=0)["slots"][0]["reader_count"] == 0
    assert not keep[1].still_held()


def stage_dead_consumers(name):
    assert cli("block", "write", name, "--data", "v1", "--slot", "0").returncode == 0
    for _ in range(2):
        crash("block", "read", name, "--slot", "0", failpoint="block.read.while_holding")
    return [warden.Consumer.open(name, heartbeat_interval=0.05)]


def check_dead_consumers(name, keep):
    assert recovery.diagnose(name)["active_consumer_count"] == 1


def stage_corruption(name):
    assert cli("block", "write", name, "--data", "MARKER-x", "--slot", "1").returncode == 0
    path = f"/dev/shm/warden-block.{name}"
    data = pathlib.Path(path).read_bytes()
    with open(path, "r+b") as segment:
        segment.seek(data.index(b"MARKER-x"))
        segment.write(b"m")
    return []


def check_corruption(name, keep):
    assert recovery.validate(name)["unresolved"] == 0


DRILLS = {
    "Scenario 1": (stage_stuck_writer, check_stuck_writer),
    "Scenario 2": (stage_stuck_readers, check_stuck_readers),
    "Scenario 3": (stage_dead_consumers, check_dead_consumers),
    "Scenario 4": (stage_corruption, check_corruption),
}


def test_the_runbook_has_a_python_snippet_for_each_scenario():
    titles = [title for title, _ in snippets()]
    assert [t.split(":")[0] for t in titles] == list(DRILLS)


@pytest.mark.parametrize("title,code", snippets(), ids=lambda v: str(v)[:10])
def test_runbook_snippet_recovers_its_scenario(title, code):
    assert WARDEN, "WARDEN_CLI must name the warden binary (ctest sets it)"
    drill = next((d for key, d in DRILLS.items() if title.startswith(key)), None)
    assert drill, f"runbook section '{title}' has a Python snippet but no drill here"
    stage, check = drill
    name = f"pyrb{os.getpid()}-{uuid.uuid4().hex[:8]}"
    warden.create_block(name, slots=4, slot_size=64)
    try:
        keep = stage(name)
        exec(compile(code.replace("my_datablock", name), str(RUNBOOK), "exec"), {})
        check(name, keep)
    finally:
        warden.remove_block(name)
