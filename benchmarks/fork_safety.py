#!/usr/bin/env python
"""Which backends survive ``os.fork()`` after the parent imported (and used) them: what warm pods rely on.

A warm worker (``saibench_jupyter/pods/_worker.py``) imports libraries once and forks a
pod per request. A library that started threads in the parent (BLAS pools, PyTorch's
intra-op pool, XLA's runtime, the CUDA driver) can leave the child with a lock held by a
thread that no longer exists: the child hangs, or fails. Each case below runs in a fresh
process: a *setup* in the parent (an import, maybe some work), then ``--forks`` children in
turn, each running the *child* code under a ``SIGALRM`` deadline (a hung child is killed by
it). Printed per case: the setup time, the parent's threads after the setup (OS threads
from ``/proc/self/task``), how the children ended (``ok``, ``hang``, ``error``, ``signal``),
warnings raised at the fork, what the child saw (thread counts), and how long ``os.fork()``
itself took in the parent.

Run ``python benchmarks/fork_safety.py`` (``--forks N``, ``--case NAME`` for one). Cases
whose library is missing, or that need a GPU where there is none, are skipped and say so.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from typing import Any

#: Seconds a child may take before it counts as hung (the work itself takes milliseconds).
CHILD_DEADLINE = 20
#: Seconds a whole case may take (setup, every fork).
CASE_DEADLINE = 300

#: name -> (what it shows, setup in the parent, code in each child). Both may set ``seen`` (a dict) to report.
CASES: dict[str, tuple[str, str, str]] = {
    "numpy-import": (
        "NumPy imported (OpenBLAS loaded), nothing computed; the child multiplies",
        "import numpy as np\na = np.ones((1000, 1000))",
        "from threadpoolctl import threadpool_info\n"
        "seen['blas_threads'] = [p['num_threads'] for p in threadpool_info()]\nb = a @ a",
    ),
    "numpy-after-matmul": (
        "the parent multiplied first (OpenBLAS's pool busy), then forks; the child multiplies",
        "import numpy as np\na = np.ones((1000, 1000))\nfor _ in range(3): a @ a",
        "from threadpoolctl import threadpool_info\n"
        "seen['blas_threads'] = [p['num_threads'] for p in threadpool_info()]\nb = a @ a",
    ),
    "scipy-import": (
        "SciPy's integrators and linear algebra imported (its own OpenBLAS loaded, a second pool), nothing "
        "computed; the child solves a linear system with SciPy and multiplies with NumPy",
        "import numpy as np, scipy.integrate, scipy.linalg\na = np.random.default_rng(0).normal(size=(800, 800))",
        "from threadpoolctl import threadpool_info\n"
        "seen['blas_threads'] = [p['num_threads'] for p in threadpool_info()]\n"
        "x = scipy.linalg.solve(a, a @ np.ones(800))\nassert np.allclose(x, 1.0), 'a wrong answer'",
    ),
    "scipy-after-solve": (
        "the parent solved with SciPy's linear algebra first (both OpenBLAS pools busy), then forks; the child "
        "solves and integrates",
        "import numpy as np, scipy.integrate, scipy.linalg\na = np.random.default_rng(0).normal(size=(800, 800))\n"
        "for _ in range(3): scipy.linalg.solve(a, a @ np.ones(800)); a @ a",
        "x = scipy.linalg.solve(a, a @ np.ones(800))\nassert np.allclose(x, 1.0), 'a wrong answer'\n"
        "y = scipy.integrate.solve_ivp(lambda t, y: -y, (0, 1), [1.0], method='Radau', rtol=1e-8).y[0, -1]\n"
        "assert abs(y - np.exp(-1)) < 1e-6, 'a wrong integral'",
    ),
    "torch-import": (
        "PyTorch imported, nothing computed (what a warm worker does); the child sets 2 threads and computes",
        "import torch",
        "seen['threads_inherited'] = torch.get_num_threads()\ntorch.set_num_threads(2)\nx = torch.ones(800, 800)\n"
        "y = x @ x\nz = torch.ones(10**7).sum()\nseen['threads_set'] = torch.get_num_threads()",
    ),
    "torch-after-small-op": (
        "the parent ran only small operations (50×50 products, 1000-element sums); the child computes",
        "import torch\nfor _ in range(3): torch.ones(50, 50) @ torch.ones(50, 50); torch.ones(1000).sum()",
        "torch.set_num_threads(2)\nx = torch.ones(800, 800)\ny = x @ x\nz = torch.ones(10**7).sum()",
    ),
    "torch-after-parallel-op": (
        "the parent computed on its intra-op pool (OpenMP threads started), then forks; the child computes",
        "import torch\nx = torch.ones(800, 800)\nfor _ in range(3): x @ x; torch.ones(10**7).sum()",
        "seen['threads_inherited'] = torch.get_num_threads()\ntorch.set_num_threads(2)\ny = x @ x\n"
        "z = torch.ones(10**7).sum()",
    ),
    "torch-after-parallel-op-1-thread": (
        "as above, but the child sets 1 thread before computing (a 1-CPU pod)",
        "import torch\nx = torch.ones(800, 800)\nfor _ in range(3): x @ x; torch.ones(10**7).sum()",
        "torch.set_num_threads(1)\ny = x @ x\nz = torch.ones(10**7).sum()",
    ),
    "torch-1-thread-parent": (
        "the parent set 1 thread, then computed (what a torch worker does while it loads module code); "
        "the child sets 2 threads and computes",
        "import torch\ntorch.set_num_threads(1)\nx = torch.ones(800, 800)\n"
        "for _ in range(3): x @ x; torch.ones(10**7).sum(); torch.nn.Linear(784, 256)",
        "seen['threads_inherited'] = torch.get_num_threads()\ntorch.set_num_threads(2)\ny = x @ x\n"
        "z = torch.ones(10**7).sum()\nseen['threads_set'] = torch.get_num_threads()",
    ),
    "torch-cuda-import": (
        "PyTorch imported on a GPU machine: is CUDA initialised by the import? the child uses the GPU",
        "import torch\nseen['cuda_initialised_by_import'] = torch.cuda.is_initialized()\n"
        "seen['cuda_devices'] = torch.cuda.device_count()",
        "y = torch.ones(256, 256, device='cuda') @ torch.ones(256, 256, device='cuda')\ntorch.cuda.synchronize()",
    ),
    "torch-cuda-after-init": (
        "the parent used the GPU (CUDA initialised), then forks; the child uses the GPU",
        "import torch\ntorch.ones(1, device='cuda')\ntorch.cuda.synchronize()",
        "y = torch.ones(256, 256, device='cuda') @ torch.ones(256, 256, device='cuda')\ntorch.cuda.synchronize()",
    ),
    "jax-import": (
        "JAX imported, no backend started; the child computes",
        "import jax, jax.numpy as jnp",
        "y = (jnp.ones((500, 500)) @ jnp.ones((500, 500))).block_until_ready()",
    ),
    "jax-after-op": (
        "the parent computed with JAX (XLA's CPU backend started), then forks; the child computes",
        "import jax, jax.numpy as jnp\n(jnp.ones((500, 500)) @ jnp.ones((500, 500))).block_until_ready()",
        "y = (jnp.ones((500, 500)) @ jnp.ones((500, 500))).block_until_ready()",
    ),
}
#: The library each case needs, and whether it needs a CUDA device.
NEEDS = {"numpy": "numpy", "scipy": "scipy", "torch": "torch", "jax": "jax"}


def os_threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return -1


def one_case(name: str, forks: int) -> dict[str, Any]:
    """Run case ``name`` in this process; the findings as a dict (printed as JSON by ``--inner``)."""
    _, setup, child = CASES[name]
    seen: dict[str, Any] = {}
    scope: dict[str, Any] = {"seen": seen}
    t0 = time.perf_counter()
    exec(setup, scope)  # the script's own fixed snippets
    out: dict[str, Any] = {"case": name, "setup_s": time.perf_counter() - t0, "parent_threads": os_threads(),
                           "parent": dict(seen), "children": [], "warnings": []}
    for _ in range(forks):
        read, write = os.pipe()
        err_read, err_write = os.pipe()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            forking = time.perf_counter()
            pid = os.fork()
            forked = time.perf_counter() - forking
        if pid == 0:
            os.close(read)
            os.close(err_read)
            os.dup2(err_write, 2)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)  # a hung child dies of it, even inside C code
            signal.alarm(CHILD_DEADLINE)
            code = 0
            try:
                seen.clear()
                seen["threads_at_fork"] = os_threads()
                exec(child, scope)
                seen["threads_after"] = os_threads()
            except BaseException as exc:
                seen["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                code = 1
            os.write(write, json.dumps(seen, default=str).encode())
            os._exit(code)
        os.close(write)
        os.close(err_write)
        out["warnings"] += sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught}
                                  - set(out["warnings"]))
        started = time.perf_counter()
        _, status = os.waitpid(pid, 0)
        took = time.perf_counter() - started
        report = os.read(read, 1 << 16)
        os.read(err_read, 1 << 16)
        os.close(read)
        os.close(err_read)
        child_seen = json.loads(report) if report else {}
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            ending = "hang" if sig == signal.SIGALRM else f"signal {signal.Signals(sig).name}"
        else:
            ending = "ok" if os.WEXITSTATUS(status) == 0 else "error"
        out["children"].append({"ending": ending, "seconds": took, "fork_s": forked, **child_seen})
    return out


def available(name: str) -> str | None:
    """Why case ``name`` cannot run here, or None."""
    import importlib.util

    module = NEEDS[name.split("-")[0]]
    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed"
    if "cuda" in name:
        probe = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"],
                               capture_output=True, text=True, timeout=120)
        if probe.stdout.strip() != "True":
            return "no CUDA device visible to torch"
    return None


def summary(found: dict[str, Any]) -> str:
    endings: dict[str, int] = {}
    for child in found["children"]:
        endings[child["ending"]] = endings.get(child["ending"], 0) + 1
    return ", ".join(f"{n} {e}" for e, n in endings.items())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--forks", type=int, default=5, help="children per case (default 5)")
    ap.add_argument("--case", action="append", choices=sorted(CASES), help="only this case (repeatable)")
    ap.add_argument("--inner", help=argparse.SUPPRESS)  # one case, in this process: the JSON findings
    ap.add_argument("--json", action="store_true", help="print the findings as JSON too")
    args = ap.parse_args(argv)
    if args.inner:
        print(json.dumps(one_case(args.inner, args.forks), default=str))
        return 0
    print(f"fork safety: {args.forks} forks per case, a child hung after {CHILD_DEADLINE} s; "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs", flush=True)
    results = []
    for name in args.case or list(CASES):
        what = CASES[name][0]
        why = available(name)
        if why is not None:
            print(f"\n{name}: skipped ({why})", flush=True)
            results.append({"case": name, "skipped": why})
            continue
        env = {**os.environ, "PYTHONWARNINGS": "default"}
        try:
            done = subprocess.run([sys.executable, __file__, "--inner", name, "--forks", str(args.forks)],
                                  capture_output=True, text=True, timeout=CASE_DEADLINE, env=env)
        except subprocess.TimeoutExpired:
            print(f"\n{name}: the parent itself hung (over {CASE_DEADLINE} s)", flush=True)
            results.append({"case": name, "parent": "hang"})
            continue
        if done.returncode != 0 or not done.stdout.strip():
            print(f"\n{name}: the case failed (exit {done.returncode}): {done.stderr.strip()[-800:]}", flush=True)
            results.append({"case": name, "failed": done.stderr[-2000:]})
            continue
        found = json.loads(done.stdout.strip().splitlines()[-1])
        results.append(found)
        print(f"\n{name}: {what}", flush=True)
        print(f"  setup {found['setup_s']:.2f} s; parent's OS threads after it: {found['parent_threads']}"
              + (f"; {found['parent']}" if found["parent"] else ""))
        print(f"  children: {summary(found)}")
        first = found["children"][0] if found["children"] else {}
        shown = {k: v for k, v in first.items() if k not in ("ending", "seconds", "fork_s")}
        if shown:
            print(f"  the first child saw: {shown}")
        slowest = max((c["seconds"] for c in found["children"]), default=0.0)
        forks = sorted(c["fork_s"] for c in found["children"])
        print(f"  slowest child: {slowest:.2f} s; os.fork() in the parent: {forks[len(forks) // 2] * 1e3:.2f} ms "
              "(median: page tables are copied, so it grows with the parent's memory)")
        for w in found["warnings"]:
            print(f"  warning at fork: {w}")
    if args.json:
        print(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
