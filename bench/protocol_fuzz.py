"""Fuzz the worker's protocol: random and mutated frames against live workers, each frame
followed by `hello`, counting crashes and hangs.

    python bench/protocol_fuzz.py [--frames 100000] [--workers 12] [--seed 0] [--frame-timeout 0.25]
                                  [--repo DIR]

A frame is random bytes, a valid request (hello, cancel, segment, manipulate, preview, with
small real buffers) with its bytes mutated (bit flips, overwritten, cut, inserted or repeated
runs), or a valid frame whose header was rewritten with type-confused fields (lists and objects
where numbers go, integers of thousands of digits, nesting a thousand deep, names of 44 KB, files
that are FIFOs or hard links). After each one the harness sends `hello` and waits for its answer;
a frame that declared more bytes than it sent eats that hello, so an unanswered hello is followed
by a second one once the worker's frame timeout has passed.

- crash: the worker exited (any status; `shutdown` is never sent, and a mutated one is counted
  apart as a requested exit), or wrote a traceback;
- hang: no hello was answered, the last after SLOW_GRACE seconds: the worker is alive but deaf
  (it is killed and restarted);
- slow: the first two hellos went unanswered but the third was, within SLOW_GRACE (a loaded
  machine: many workers share few cores);
- recovered: the first hello was eaten, the second answered (the frame timed out as designed).

`--repo DIR` runs the worker of another checkout (an older commit, for a before figure); a worker
without `--frame-timeout` is started without it. Prints a Markdown table: frames, crashes, hangs,
recovered, requested exits, worker RSS before and after, and the seconds taken.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.link import protocol  # noqa: E402

HELLO_ID_BASE = 1 << 40  # ids of the harness's own hellos, apart from the fuzzed frames' ids
# A worker that answers only after this many seconds is slow (a loaded machine), not deaf.
SLOW_GRACE = 30.0


def _frame(header: dict, payload: bytes = b"") -> bytes:
    body = json.dumps(header, separators=(",", ":")).encode()
    return protocol.MAGIC + struct.pack(">I", len(body)) + body + payload


def _spec(name: str, shape: list[int], dtype: str, **extra) -> dict:
    size = protocol.ITEM_SIZES[dtype]
    for dimension in shape:
        size *= dimension
    return {"name": name, "shape": shape, "dtype": dtype, "nbytes": size, **extra}


def _request(request_id: int, op: str, params: dict, buffers: list[tuple[dict, bytes]] = ()) -> bytes:
    header = {"protocol": 1, "id": request_id, "op": op, "params": params, "buffers": [spec for spec, _ in buffers]}
    return _frame(header, b"".join(data for spec, data in buffers if "file" not in spec))


def seed_frames(rng: random.Random) -> list[bytes]:
    """Valid requests of every kind, with small buffers (so a fuzzed one that stays valid runs
    for real, in milliseconds)."""
    h, w = 12, 16
    image = bytes(rng.randrange(256) for _ in range(h * w * 4))
    mask_a = bytes(255 if 2 <= x < 6 and 2 <= y < 6 else 0 for y in range(h) for x in range(w))
    mask_b = bytes(255 if 9 <= x < 13 and 5 <= y < 9 else 0 for y in range(h) for x in range(w))
    ids_a = bytes(1 if 2 <= x < 6 else 0 for y in range(h) for x in range(w))
    ids_b = bytes(1 if 8 <= x < 12 else 0 for y in range(h) for x in range(w))
    exemplar = (_spec("exemplar", [h, w, 4], "uint8"), image)
    masks = [(_spec("source_mask", [h, w], "uint8"), mask_a), (_spec("target_mask", [h, w], "uint8"), mask_b)]
    regions = [(_spec("exemplar_regions", [h, w], "uint8"), ids_a), (_spec("target_regions", [h, w], "uint8"), ids_b)]
    return [
        _request(1, "hello", {}),
        _request(2, "cancel", {"request": 7}),
        _request(3, "segment", {"max_regions": 3}, [(_spec("image", [h, w, 4], "uint8"), image)]),
        _request(4, "manipulate", {"model": "moments", "channel_order": "bgra"}, [exemplar, *masks]),
        _request(5, "preview", {"model": "moments", "max_side": 16, "for_display": True}, [exemplar, *regions]),
        _request(6, "manipulate", {"model": "moments"}, [exemplar, (_spec("exemplar_map", [h, w, 4], "uint8"), image),
                                                         (_spec("target_map", [h, w, 4], "uint8"), image)]),
    ]


CONFUSED = [[], {}, [1, [2]], {"a": {"b": 1}}, None, True, -1, 1 << 64, 1.5, "x" * 50, "", "\u0000", 10 ** 30]


def hostile_frame(rng: random.Random, shared: str | None) -> bytes:
    """A valid frame with one header field replaced by something of the wrong type or size."""
    choice = rng.randrange(11)
    value = rng.choice(CONFUSED)
    if choice == 0:
        return _request(9, "hello", {}).replace(b'"id":9', b'"id":' + json.dumps(value).encode())
    if choice == 1:
        return _frame({"protocol": 1, "id": 9, "op": value, "params": {}, "buffers": []})
    if choice == 2:
        return _frame({"protocol": 1, "id": 9, "op": "cancel", "params": {"request": value}, "buffers": []})
    if choice == 3:
        spec = {"name": "image", "shape": [2, 2, 4], "dtype": value, "nbytes": 16}
        return _frame({"protocol": 1, "id": 9, "op": "segment", "params": {}, "buffers": [spec]}, bytes(16))
    if choice == 4:
        depth = rng.choice([20, 500, 1000, 3000])
        return _frame({"protocol": 1, "id": 9, "op": "hello", "params": {}, "buffers": []})[:-1] + (
            b',"deep":' + b"[" * depth + b"]" * depth + b"}")
    if choice == 5:
        digits = rng.choice([25, 4300, 5000, 20000])
        body = b'{"protocol":1,"id":' + b"9" * digits + b',"op":"hello","buffers":[]}'
        return protocol.MAGIC + struct.pack(">I", len(body)) + body
    if choice == 6:
        return _frame({"protocol": 1, "id": 9, "op": "x" * rng.choice([65, 44_000]), "params": {}, "buffers": []})
    if choice == 7:
        shape = [0, rng.choice([10 ** 18, 10 ** 30, 1 << 31, 1 << 62])]
        return _frame({"protocol": 1, "id": 9, "op": "manipulate", "params": {},
                       "buffers": [{"name": "source_mask", "shape": shape, "dtype": "uint8", "nbytes": 0}]})
    if choice == 8:
        return _frame({"protocol": 1, "id": 9, "op": "manipulate", "params": {"model": "m" * rng.choice([300, 10_000])},
                       "buffers": []})
    if choice == 9 and shared:
        name = _shared_trap(rng, shared)
        spec = {"name": "image", "shape": [4, 4, 4], "dtype": "uint8", "nbytes": 64, "file": name}
        return _frame({"protocol": 1, "id": 9, "op": "segment", "params": {}, "shared": value, "buffers": [spec]})
    return _frame({"protocol": 1, "id": 9, "op": "manipulate", "params": value, "shared": value, "buffers": []})


def _shared_trap(rng: random.Random, folder: str) -> str:
    """A file in the shared folder that is not what a buffer must be: a FIFO, a hard link, a file
    of the wrong size."""
    name = f"t{rng.randrange(1 << 30)}-0.buf"
    path = os.path.join(folder, name)
    kind = rng.randrange(3)
    if kind == 0:
        os.mkfifo(path)
    elif kind == 1:
        with open(path + ".src", "wb") as out:
            out.write(bytes(64))
        os.link(path + ".src", path)
    else:
        with open(path, "wb") as out:
            out.write(bytes(rng.randrange(64)))
    return name


def mutate(frame: bytes, rng: random.Random) -> bytes:
    data = bytearray(frame)
    for _ in range(rng.randint(1, 4)):
        if not data:
            break
        at = rng.randrange(len(data))
        kind = rng.randrange(6)
        if kind == 0:
            data[at] ^= 1 << rng.randrange(8)
        elif kind == 1:
            data[at] = rng.randrange(256)
        elif kind == 2:
            del data[at:]
        elif kind == 3:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif kind == 4:
            data[at:at] = data[at : at + rng.randint(1, 64)]
        else:
            data[at : at + 4] = rng.choice([b"9999", b"[[[[", b"{}{}", b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b'""""'])
    return bytes(data)


def make_frame(rng: random.Random, seeds: list[bytes], shared: str | None) -> bytes:
    kind = rng.random()
    if kind < 0.1:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
    if kind < 0.25:
        return protocol.MAGIC + bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
    if kind < 0.45:
        return hostile_frame(rng, shared)
    return mutate(rng.choice(seeds), rng)


@dataclass
class Counts:
    frames: int = 0
    crashes: int = 0
    hangs: int = 0
    recovered: int = 0
    slow: int = 0
    requested_exits: int = 0
    rss_before_kb: list[int] = field(default_factory=list)
    rss_after_kb: list[int] = field(default_factory=list)
    examples: list[str] = field(default_factory=list)

    def add(self, other: "Counts") -> None:
        for name in ("frames", "crashes", "hangs", "slow", "recovered", "requested_exits"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.rss_before_kb += other.rss_before_kb
        self.rss_after_kb += other.rss_after_kb
        self.examples += other.examples[:3]


def _supports_frame_timeout(repo: Path) -> bool:
    cli = next(path for path in (repo / "engine" / "app" / "cli.py", repo / "engine" / "cli.py") if path.is_file())
    return "frame-timeout" in cli.read_text()


class Target:
    """One live worker, its replies read on a thread into a queue."""

    def __init__(self, repo: Path, frame_timeout: float, shared: bool = True):
        self.repo, self.frame_timeout = repo, frame_timeout
        self.shared_dir = tempfile.mkdtemp(prefix="simnet-fuzz-") if shared else None
        self.process: subprocess.Popen | None = None
        self.hellos = 0
        self.start()

    def start(self) -> None:
        command = [sys.executable, "-m", "engine", "worker", "--idle-timeout", "3600"]
        if _supports_frame_timeout(self.repo):
            command += ["--frame-timeout", str(self.frame_timeout)]
        # one thread each: many workers share a few cores, and idle BLAS threads spin
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", SIMNET_THREADS="1")
        if self.shared_dir:
            env[protocol.SHARED_DIR_VARIABLE] = self.shared_dir
        self.stderr = tempfile.TemporaryFile()
        self.stderr_seen = 0
        self.process = subprocess.Popen(command, cwd=self.repo, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.stderr, env=env, bufsize=0)
        self.replies: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, args=(self.process, self.replies), daemon=True).start()
        if not self.hello(30.0):
            raise RuntimeError(f"the worker in {self.repo} did not start: {self.stderr_text()}")

    @staticmethod
    def _read(process, replies) -> None:
        try:
            while True:
                replies.put(protocol.read_frame(process.stdout, 1 << 40).header)
        except (EOFError, protocol.FrameError, OSError, ValueError):
            replies.put(None)

    def send(self, data: bytes) -> bool:
        try:
            self.process.stdin.write(data)
            return True
        except (BrokenPipeError, OSError):
            return False

    def hello(self, wait: float) -> bool:
        """Send `hello` and wait for its answer (other replies are read past)."""
        self.hellos += 1
        request_id = HELLO_ID_BASE + self.hellos
        if not self.send(_request(request_id, "hello", {})):
            return False
        deadline = time.monotonic() + wait
        while True:
            try:
                reply = self.replies.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return False
            if reply is None:
                return False
            if reply.get("id") == request_id and reply.get("type") == "result":
                return True

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def stderr_text(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-600:]

    def new_stderr(self) -> str:
        """What the worker wrote to stderr since the last call."""
        self.stderr.seek(self.stderr_seen)
        text = self.stderr.read()
        self.stderr_seen += len(text)
        return text.decode(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
        if self.process:
            self.process.wait()

    def close(self) -> None:
        self.stop()
        if self.shared_dir:
            subprocess.run(["rm", "-rf", self.shared_dir], check=False)


def try_frame(target: Target, data: bytes) -> str:
    """Send one frame and a hello after it: "ok", "recovered", "slow", "crash", "hang" or "exit"."""
    target.send(data)
    first_wait = target.frame_timeout + 0.25
    if target.hello(first_wait):
        outcome = "ok"
    elif target.alive() and target.hello(target.frame_timeout + 3.0):
        outcome = "recovered"
    elif target.alive() and target.hello(SLOW_GRACE):
        outcome = "slow"
    elif target.alive():
        outcome = "hang"
    else:
        outcome = "exit" if target.process.returncode == 0 and b'"shutdown"' in data else "crash"
    if outcome in ("ok", "recovered", "slow") and "Traceback" in target.new_stderr():
        outcome = "crash"  # a thread of the worker died: the next frame may find it deaf
    return outcome


def fuzz(frames: int, seed: int, repo: Path, frame_timeout: float) -> Counts:
    rng = random.Random(seed)
    counts = Counts()
    target = Target(repo, frame_timeout)
    seeds = seed_frames(rng)
    for frame in seeds:  # every operation once, so that "before" has its libraries loaded
        try_frame(target, frame)
    counts.rss_before_kb.append(target.rss_kb())
    try:
        for _ in range(frames):
            data = make_frame(rng, seeds, target.shared_dir)
            outcome = try_frame(target, data)
            counts.frames += 1
            if outcome == "recovered":
                counts.recovered += 1
            elif outcome == "slow":
                counts.slow += 1
            elif outcome in ("crash", "hang", "exit"):
                if outcome == "crash":
                    counts.crashes += 1
                elif outcome == "hang":
                    counts.hangs += 1
                else:
                    counts.requested_exits += 1
                if len(counts.examples) < 3 and outcome != "exit":
                    counts.examples.append(f"{outcome}: {data[:120]!r} -> {target.stderr_text()[-200:]!r}")
                target.restart()
        counts.rss_after_kb.append(target.rss_kb())
    finally:
        target.close()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=12, help="live workers fuzzed side by side")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frame-timeout", type=float, default=0.25)
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    started = time.perf_counter()
    shares = [args.frames // args.workers + (i < args.frames % args.workers) for i in range(args.workers)]
    results = [Counts() for _ in shares]
    threads = [threading.Thread(target=lambda i=i: results[i].add(fuzz(shares[i], args.seed * 1000 + i, args.repo,
                                                                         args.frame_timeout)))
               for i in range(args.workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = Counts()
    for result in results:
        total.add(result)
    seconds = time.perf_counter() - started
    print(f"`python bench/protocol_fuzz.py --frames {args.frames} --workers {args.workers} --seed {args.seed} "
          f"--frame-timeout {args.frame_timeout}`" + (f" against {args.repo.name}" if args.repo != parser.get_default("repo") else ""))
    print()
    print("| frames | crashes | hangs | slow (answered within SLOW_GRACE) | recovered (frame timed out) | requested exits | RSS before (MB) | RSS after (MB) | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    mean = lambda values: sum(values) / len(values) / 1024 if values else float("nan")  # noqa: E731
    print(f"| {total.frames} | {total.crashes} | {total.hangs} | {total.slow} | {total.recovered} | {total.requested_exits} | "
          f"{mean(total.rss_before_kb):.1f} | {mean(total.rss_after_kb):.1f} | {seconds:.0f} |")
    print(f"\nSLOW_GRACE = {SLOW_GRACE:.0f} s.")
    if total.examples:
        print()
        for example in total.examples[:6]:
            print(f"- {example}")


if __name__ == "__main__":
    main()
