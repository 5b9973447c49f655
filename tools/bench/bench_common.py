"""What the Python benchmark scripts share: reading the benchmark WAV, and telling whether other
processes used the CPU while a run was timed (a run is "disturbed" when they used more than
DISTURBED_SHARE of one core), so that a disturbed timing is reported as such.

Imported by nemo_bench.py and onnx_asr_bench.py, which Python runs with this directory first on
sys.path.
"""

import os
import subprocess
import sys
import time
import wave

import numpy as np


def read_wav(path):
    with wave.open(path, "rb") as w:
        if w.getnchannels() != 1 or w.getsampwidth() != 2:
            sys.exit(f"{path}: need mono 16-bit PCM, got {w.getnchannels()} ch, {8 * w.getsampwidth()} bit")
        sr, n = w.getframerate(), w.getnframes()
        pcm = np.frombuffer(w.readframes(n), dtype="<i2")
    return (pcm.astype(np.float32) / 32768.0), sr


TRAIN_PATTERN = r"^[^ ]*python[^ ]* (-[^ ]* )*[^ ]*train\.py"  # pgrep -f: the fixture trainers
DISTURBED_SHARE = 0.05  # a run is "disturbed" if other processes used > 5% of one core meanwhile


def _ancestors():
    """This process and its parents (a cargo bench that runs this script is not a neighbour)."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


ANCESTORS = _ancestors()


def busy_others(pattern=TRAIN_PATTERN, exact=False):
    """PIDs of other processes matching pattern (not this one or its parents)."""
    try:
        cmd = ["pgrep", "-x", pattern] if exact else ["pgrep", "-f", pattern]
        out = subprocess.run(cmd, capture_output=True, text=True).stdout.split()
        return [int(p) for p in out if int(p) not in ANCESTORS]
    except OSError:
        return None


def busy_cpu_s():
    """CPU seconds all processes have used so far (/proc/stat: everything but idle and iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")


def self_cpu_s():
    t = os.times()
    return t.user + t.system


class Neighbours:
    """CPU seconds used by OTHER processes while a timed run is in progress."""

    def __init__(self):
        self.busy0, self.self0, self.t0 = busy_cpu_s(), self_cpu_s(), time.perf_counter()

    def stop(self):
        others = (busy_cpu_s() - self.busy0) - (self_cpu_s() - self.self0)
        return max(others, 0.0), time.perf_counter() - self.t0


def stats(xs):
    return {"median": float(np.median(xs)), "min": float(np.min(xs)), "runs": [round(x, 4) for x in xs]}
