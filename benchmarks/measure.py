"""Timing, peak-memory and machine helpers shared by the benchmark scripts."""

import ctypes
import datetime
import os
import platform
import statistics
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import psutil
import torch

GIB = 1024**3


def machine() -> dict:
    """Describe the machine a figure comes from: CPU model, cores, memory, accelerator, date."""
    info = {
        "date_utc": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M"),
        "cpu": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / GIB, 1),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class PeakMemory:
    """Peak memory of one measured phase, in bytes.

    On CUDA `peak` is torch.cuda.max_memory_allocated and `start` the allocated bytes when
    the phase began. On CPU both are the process's resident set size (RSS), sampled every
    2 ms by a thread, after glibc's malloc_trim has returned freed heap to the system.
    """

    start: int = 0
    peak: int = 0
    source: str = ""

    @property
    def added(self) -> int:
        return self.peak - self.start


@contextmanager
def peak_memory(device: torch.device):
    """Measure the peak memory of the enclosed block; yields a PeakMemory filled in on exit."""
    result = PeakMemory()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        result.start = torch.cuda.memory_allocated(device)
        result.source = "torch.cuda.max_memory_allocated"
        yield result
        torch.cuda.synchronize(device)
        result.peak = torch.cuda.max_memory_allocated(device)
        return

    _trim_heap()
    process = psutil.Process()
    result.start = result.peak = process.memory_info().rss
    result.source = "process RSS, sampled"
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            result.peak = max(result.peak, process.memory_info().rss)
            stop.wait(0.002)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        result.peak = max(result.peak, process.memory_info().rss)


def _trim_heap() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: RSS then also counts freed heap the allocator keeps


@dataclass
class StepTimes:
    """Seconds of individual steps: wall clock, and CPU time of this process (all its threads).

    On a CPU shared with other jobs the wall clock mostly measures their load; the
    process's CPU time counts only the work this process did.
    """

    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_seconds)

    def summary(self) -> dict:
        return {
            "steps": len(self.seconds),
            "wall_median_s": round(self.median, 4),
            "wall_min_s": round(min(self.seconds), 4),
            "wall_max_s": round(max(self.seconds), 4),
            "cpu_median_s": round(self.cpu_median, 4),
            "cpu_min_s": round(min(self.cpu_seconds), 4),
        }


@contextmanager
def timed(times: StepTimes, device: torch.device):
    synchronize(device)
    start, cpu_start = time.perf_counter(), time.process_time()
    yield
    synchronize(device)
    times.seconds.append(time.perf_counter() - start)
    times.cpu_seconds.append(time.process_time() - cpu_start)


def gib(value: int) -> float:
    return round(value / GIB, 3)
