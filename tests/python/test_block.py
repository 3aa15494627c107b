"""The Python API (`warden`, `warden.recovery`) against DataBlocks that a C++ process wrote
and crashed in: the `warden` CLI, killed at named failpoints (WARDEN_FAILPOINTS=...=crash)."""
import os
import signal
import subprocess
import time
import uuid

import pytest

import warden
import warden.recovery as recovery

WARDEN = os.environ.get("WARDEN_CLI", "")


def run(*args, failpoints=None):
    env = dict(os.environ)
    if failpoints:
        env["WARDEN_FAILPOINTS"] = failpoints
    return subprocess.run([WARDEN, *args], capture_output=True, text=True, env=env, timeout=60)


def start(*args, failpoints):
    env = dict(os.environ, WARDEN_FAILPOINTS=failpoints)
    return subprocess.Popen([WARDEN, *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)


def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


def slot(name, index):
    return recovery.diagnose(name, slot=index)["slots"][0]


@pytest.fixture
def block():
    assert WARDEN, "WARDEN_CLI must name the warden binary (ctest sets it)"
    name = f"py{os.getpid()}-{uuid.uuid4().hex[:8]}"
    created = run("block", "create", name, "--slots", "4", "--slot-size", "64")
    assert created.returncode == 0, created.stderr
    yield name
    warden.remove_block(name)


def crashed_reader(name, index):
    """A C++ consumer SIGKILLed while it holds a read of slot `index`; returns its pid."""
    reader = start("block", "read", name, "--slot", str(index),
                   failpoints="block.read.while_holding=crash")
    assert reader.wait(timeout=60) == -signal.SIGKILL
    return reader.pid


def test_consumer_reads_what_the_cpp_producer_wrote(block):
    wrote = run("block", "write", block, "--data", "from c++", "--slot", "1")
    assert wrote.returncode == 0, wrote.stderr
    consumer = warden.Consumer.open(block, heartbeat_interval=0)
    held = consumer.read_newest(timeout=5)
    assert held is not None
    with held:
        assert held.data == b"from c++"
        assert held.sequence == 1
        assert held.index == 1
        assert held.verify()
        assert held.still_held()
        assert slot(block, 1)["reader_count"] == 1
    assert not held.still_held()
    assert slot(block, 1)["reader_count"] == 0
    assert consumer.read_newest(timeout=0.01, after_sequence=1) is None


def test_python_producer_is_read_by_the_cpp_consumer(block):
    producer = warden.Producer.open(block)
    assert (producer.slot_count, producer.slot_size) == (4, 64)
    assert producer.write(b"from python", slot=2) == 1
    read = run("block", "read", block, "--slot", "2")
    assert read.returncode == 0, read.stderr
    assert read.stdout == "from python\n"
    assert "checksum ok" in read.stderr


def test_python_fills_a_slot_in_place_and_the_cpp_consumer_verifies_it(block):
    producer = warden.Producer.open(block)
    with producer.acquire(slot=1) as target:
        assert (target.index, target.size) == (1, 64)
        target.write(b"in ")
        target.write(b"place", offset=3)
        with pytest.raises(warden.InvalidArgumentError):
            target.write(b"x" * 10, offset=60)  # past the slot's end: nothing written
        assert target.commit(8) == 1
    read = run("block", "read", block, "--slot", "1")
    assert read.returncode == 0, read.stderr
    assert read.stdout == "in place\n"
    assert "checksum ok" in read.stderr
    with pytest.raises(warden.InvalidArgumentError):
        target.commit(8)  # already committed
    with pytest.raises(warden.InvalidArgumentError):
        target.write(b"evil")  # a published payload cannot be changed through it
    assert run("block", "read", block, "--slot", "1").stdout == "in place\n"


def test_a_python_write_left_without_commit_is_aborted_and_the_slot_is_free(block):
    producer = warden.Producer.open(block)
    with pytest.raises(RuntimeError):
        with producer.acquire(slot=3) as target:
            target.write(b"half")
            assert slot(block, 3)["write_lock"] is not None
            raise RuntimeError("the caller gave up")
    assert slot(block, 3)["state"] == "FREE"
    assert slot(block, 3)["write_lock"] is None
    with pytest.raises(warden.InvalidArgumentError):
        with producer.acquire(slot=3) as target:
            target.commit(65)  # more than the slot holds
    assert producer.write(b"next", slot=3) == 1


def test_stuck_writer_of_a_crashed_cpp_producer_is_released(block):
    crashed = start("block", "write", block, "--data", "never", "--slot", "0",
                    failpoints="block.commit.before_publish=crash")
    assert crashed.wait(timeout=60) == -signal.SIGKILL
    stuck = slot(block, 0)
    assert stuck["is_stuck"] is True
    assert stuck["write_lock"]["pid"] == crashed.pid
    assert stuck["write_lock"]["alive"] is False
    assert "--action release_writer" in stuck["stuck_reason"]
    assert recovery.is_process_alive(crashed.pid) is False
    assert recovery.is_process_alive(os.getpid()) is True

    released = recovery.release_writer(block, 0)
    assert released["action"] == "release_writer"
    assert f"dead pid {crashed.pid}" in released["detail"]
    assert recovery.release_writer(block, 0) is None
    freed = slot(block, 0)
    assert (freed["state"], freed["write_lock"], freed["is_stuck"]) == ("FREE", None, False)
    assert warden.Producer.open(block).write(b"again", slot=0) == 1


def test_release_writer_refuses_while_the_cpp_writer_lives(block):
    writer = start("block", "write", block, "--data", "x", "--slot", "3",
                   failpoints="block.write.after_acquire=pause")
    try:
        assert wait_until(lambda: (slot(block, 3)["write_lock"] or {}).get("pid") == writer.pid)
        with pytest.raises(warden.LockRecoveryError) as refused:
            recovery.release_writer(block, 3)
        assert refused.value.code == "lock_held"
        assert isinstance(refused.value, warden.Error)
        assert f"pid {writer.pid} is alive" in str(refused.value)
    finally:
        writer.kill()
        writer.wait()
    assert recovery.release_writer(block, 3)["slot"] == 3


def test_dead_readers_are_released_and_a_live_one_needs_force(block):
    assert run("block", "write", block, "--data", "v1", "--slot", "0").returncode == 0
    dead_pid = crashed_reader(block, 0)
    consumer = warden.Consumer.open(block, heartbeat_interval=0)
    held = consumer.read_slot(0, timeout=5)
    stuck = slot(block, 0)
    assert stuck["reader_count"] == 2
    assert {r["pid"]: r["alive"] for r in stuck["readers"]} == {dead_pid: False,
                                                               os.getpid(): True}

    gentle = recovery.release_readers(block, 0)
    assert [r["pid"] for r in gentle["released"]] == [dead_pid]
    assert [r["pid"] for r in gentle["kept"]] == [os.getpid()]
    assert held.still_held()

    forced = recovery.release_readers(block, 0, force=True)
    assert [(r["pid"], r["alive"]) for r in forced["released"]] == [(os.getpid(), True)]
    assert not held.still_held()
    assert slot(block, 0)["reader_count"] == 0


def test_cleanup_removes_dead_consumers_and_corrects_the_count(block):
    assert run("block", "write", block, "--data", "v1", "--slot", "0").returncode == 0
    dead = {crashed_reader(block, 0), crashed_reader(block, 0)}
    live = warden.Consumer.open(block, heartbeat_interval=0.05)
    before = recovery.diagnose(block)
    assert before["active_consumer_count"] == 3
    assert before["live_consumer_count"] == 1

    cleaned = recovery.cleanup_dead_consumers(block)
    assert {p["pid"] for p in cleaned["removed"]} == dead
    assert cleaned["unresponsive"] == []
    assert cleaned["active_consumer_count"] == 1
    after = recovery.diagnose(block)
    assert after["active_consumer_count"] == 1
    assert [p["id"] for p in after["participants"]] == [live.id]
    assert slot(block, 0)["reader_count"] == 0  # the dead readers' holds went with them


def test_validate_finds_a_corrupt_payload_and_repair_recomputes_its_checksum(block):
    assert run("block", "write", block, "--data", "MARKER-payload", "--slot", "1").returncode == 0
    assert recovery.validate(block) == {"findings": [], "unresolved": 0}
    with open(f"/dev/shm/warden-block.{block}", "r+b") as segment:
        contents = segment.read()
        at = contents.index(b"MARKER-payload")
        segment.seek(at)
        segment.write(b"m")

    found = recovery.validate(block)
    assert found["unresolved"] == 1
    [finding] = found["findings"]
    assert finding["where"] == "slot 1"
    assert finding["problem"].startswith("payload checksum mismatch")
    assert (finding["repairable"], finding["repaired"]) == (True, False)

    repaired = recovery.validate(block, repair=True)
    assert repaired["unresolved"] == 0
    assert repaired["findings"][0]["repaired"] is True
    assert recovery.validate(block)["findings"] == []
    held = warden.Consumer.open(block, heartbeat_interval=0).read_slot(1, timeout=5)
    assert held.data == b"mARKER-payload" and held.verify()


def test_recover_auto_dry_run_changes_nothing_then_recovers(block):
    crashed = start("block", "write", block, "--data", "x", "--slot", "2",
                    failpoints="block.write.after_acquire=crash")
    assert crashed.wait(timeout=60) == -signal.SIGKILL
    planned = recovery.recover_auto(block, dry_run=True)
    assert [a["action"] for a in planned] == ["release_writer", "cleanup"]
    assert slot(block, 2)["is_stuck"] is True
    done = recovery.recover_auto(block)
    assert [(a["action"], a["slot"]) for a in done] == [("release_writer", 2), ("cleanup", 0)]
    assert slot(block, 2)["is_stuck"] is False
    assert recovery.recover_auto(block) == []


def test_errors_are_python_exceptions_with_codes(block):
    with pytest.raises(warden.IoError) as missing:
        warden.Producer.open(block + "-missing")
    assert missing.value.code == "not_found"
    assert "warden block list" in str(missing.value)
    with pytest.raises(warden.Error) as exists:
        warden.create_block(block, slots=1, slot_size=8)
    assert exists.value.code == "lock_held"
    with pytest.raises(warden.InvalidArgumentError):
        warden.create_block("bad/name", slots=1, slot_size=8)
    with pytest.raises(warden.InvalidArgumentError):
        recovery.diagnose(block, slot=4)
    with pytest.raises(warden.InvalidArgumentError):
        warden.Producer.open(block).write(b"x" * 65)

    with open(f"/dev/shm/warden-block.{block}", "r+b") as segment:
        segment.seek(8)  # the layout version, covered by the header checksum
        segment.write(b"\x09")
    with pytest.raises(warden.VerificationError) as corrupt:
        warden.Consumer.open(block)
    assert corrupt.value.code == "verification_failed"
    assert f"warden block validate {block}" in str(corrupt.value)
    [header] = recovery.validate(block, repair=True)["findings"]
    assert header["where"] == "header" and header["repaired"] is False


def test_acquire_timeout_is_a_lock_acquisition_error(block):
    writer = start("block", "write", block, "--data", "x", "--slot", "0",
                   failpoints="block.write.after_acquire=pause")
    try:
        assert wait_until(lambda: slot(block, 0)["write_lock"] is not None)
        with pytest.raises(warden.LockAcquisitionError) as timed_out:
            warden.Producer.open(block).write(b"y", timeout=0.05, slot=0)
        assert timed_out.value.code == "lock_held"
        assert f"write-locked by pid {writer.pid} (alive)" in str(timed_out.value)
    finally:
        writer.kill()
        writer.wait()
