#!/usr/bin/python3
"""The peer for bench/lock_bench.cc: python3-filelock (Debian) FileLock and SoftFileLock.

Measures the same two figures as lock_bench, the same way:
  - uncontended acquire()+release() of one lock object, median and p90;
  - handoff: 1 holder + N waiting processes on one lock; each handoff is timed from the
    moment the holder calls release() to the moment the next acquire() returns (both read
    CLOCK_MONOTONIC), every other worker is waiting when the holder releases,
    and a released worker queues again only once someone else holds the lock.
    The holder keeps the lock for a random time in [H/2, 3H/2], H = --hold-ms (as
    lock_bench's WARDEN_BENCH_HOLD_MS), so a fixed poll interval cannot fall in step with it.

Run with Debian's interpreter (/usr/bin/python3), which is the one python3-filelock is
installed for. Prints one JSON object; bench/run_lock_bench turns it into the table.
Neither peer is durable: FileLock is flock(2) on a file that stays, SoftFileLock is
open(O_CREAT|O_EXCL) + unlink; neither fsyncs anything, and both wait by polling.
"""
import argparse
import ctypes
import json
import multiprocessing
import os
import random
import statistics
import sys
import time

import filelock

MAX_HANDOFFS = 4096


def percentile(samples, p):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p * (len(ordered) - 1) + 0.5))]


def uncontended(lock_class, directory, seconds):
    path = os.path.join(directory, "peer_uncontended_%s.lock" % lock_class.__name__)
    lock = lock_class(path)
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline or len(samples) < 100:
        start = time.perf_counter_ns()
        lock.acquire()
        lock.release()
        samples.append(time.perf_counter_ns() - start)
    return samples


def handoff_worker(lock_class, path, poll_interval, total, hold_seconds, shared):
    lock = lock_class(path, timeout=120)
    with shared["ready"].get_lock():
        shared["ready"].value += 1
    while not shared["go"].value:
        time.sleep(0.001)
    seq, samples = shared["seq"], shared["samples"]
    while True:
        lock.acquire(poll_interval=poll_interval)
        acquired = time.monotonic_ns()
        n = seq.value
        if n >= total:
            lock.release()
            return
        if n > 0:
            samples[n - 1] = acquired - shared["release_ns"].value
        if shared["occupancy"].value != 0:
            shared["overlaps"].value += 1
        shared["occupancy"].value += 1
        seq.value = n + 1
        time.sleep(hold_seconds * random.uniform(0.5, 1.5))
        shared["occupancy"].value -= 1
        shared["release_ns"].value = time.monotonic_ns()
        lock.release()
        while seq.value == n + 1 and n + 1 < total:
            time.sleep(0.0002)


def handoff(lock_class, directory, waiters, handoffs, poll_interval, hold_seconds):
    context = multiprocessing.get_context("fork")
    shared = {
        "ready": context.Value(ctypes.c_int, 0),
        "go": context.RawValue(ctypes.c_int, 0),
        "seq": context.RawValue(ctypes.c_int, 0),
        "occupancy": context.RawValue(ctypes.c_int, 0),
        "overlaps": context.RawValue(ctypes.c_int, 0),
        "release_ns": context.RawValue(ctypes.c_int64, 0),
        "samples": context.RawArray(ctypes.c_int64, MAX_HANDOFFS),
    }
    path = os.path.join(directory, "peer_handoff_%s.lock" % lock_class.__name__)
    workers = [
        context.Process(target=handoff_worker,
                        args=(lock_class, path, poll_interval, handoffs + 1, hold_seconds, shared))
        for _ in range(waiters + 1)
    ]
    for worker in workers:
        worker.start()
    while shared["ready"].value < waiters + 1:
        time.sleep(0.001)
    shared["go"].value = 1
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise RuntimeError("a handoff worker failed (exit %s)" % worker.exitcode)
    if lock_class is filelock.SoftFileLock and os.path.exists(path):
        raise RuntimeError("SoftFileLock left %s behind" % path)
    return list(shared["samples"][:handoffs]), shared["overlaps"].value


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", required=True, help="lock directory (on the disk under test)")
    parser.add_argument("--waiters", type=int, default=8)
    parser.add_argument("--handoffs", type=int, default=200)
    parser.add_argument("--hold-ms", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=2.0, help="uncontended run time")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    handoffs = max(10, min(args.handoffs, MAX_HANDOFFS - 1))

    results = []
    variants = [
        (filelock.FileLock, 0.05, "default poll_interval 50 ms"),
        (filelock.FileLock, 0.001, "poll_interval 1 ms"),
        (filelock.SoftFileLock, 0.05, "default poll_interval 50 ms"),
        (filelock.SoftFileLock, 0.001, "poll_interval 1 ms"),
    ]
    uncontended_cache = {}
    for lock_class, poll_interval, variant in variants:
        if lock_class not in uncontended_cache:
            uncontended_cache[lock_class] = uncontended(lock_class, args.dir, args.seconds)
        idle = uncontended_cache[lock_class]
        samples, overlaps = handoff(lock_class, args.dir, args.waiters, handoffs, poll_interval,
                                    args.hold_ms / 1000)
        results.append({
            "lock": "python3-filelock " + lock_class.__name__,
            "variant": variant,
            "uncontended_median_us": statistics.median(idle) / 1e3,
            "uncontended_p90_us": percentile(idle, 0.9) / 1e3,
            "handoffs": handoffs,
            "handoff_median_us": statistics.median(samples) / 1e3,
            "handoff_p90_us": percentile(samples, 0.9) / 1e3,
            "handoff_max_us": max(samples) / 1e3,
            "overlaps": overlaps,
        })
    json.dump({
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "filelock": filelock.__version__,
        "results": results,
    }, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
