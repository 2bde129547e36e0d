"""Before a run on this machine's GPUs: the tasks' torch.compile baselines compiled side by side
(``evaluator/baseline_warm.py``), so the run's first candidates do not each wait for one."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

WARM_HELP = ("processes that compile the tasks' torch.compile baselines side by side before the run "
             "(default: half the CPU cores, at most 8; 0: each task's first candidate compiles its own)")


def warm_before_run(config: Any, tasks: Sequence[Any], jobs: int | None, say: Callable[[str], None]) -> None:
    """Warm the compile caches for ``tasks`` where it helps: real evaluations on this machine,
    torch.compile baselines on, more than one task, a GPU visible. Says what it did."""
    from autotuner.evaluator.baseline_warm import default_jobs, warm_baselines
    from autotuner.runtime.compile import cache_root
    from autotuner.runtime.device import cuda_available

    jobs = default_jobs() if jobs is None else jobs
    if (jobs < 1 or len(tasks) < 2 or config.cluster.enabled or not config.eval.baselines
            or not config.eval.compile_baseline or not cuda_available()):
        return
    started = time.perf_counter()
    results = warm_baselines([t.path for t in tasks], cache_root(), jobs, config.eval)
    compiled = [r for r in results if not r.error and not r.cached]
    cached = sum(r.cached for r in results)
    say(f"torch.compile baselines: {len(compiled)} compiled in {time.perf_counter() - started:.0f} s by "
        f"{min(jobs, len(tasks))} processes, {cached} already measured (the evaluator times them, one at a time)")
    for r in results:
        if r.error:
            say(f"  {r.task}: not compiled ahead ({r.error[:160]}); its first candidate compiles it")
