"""A writer process for the durability tests: records evaluations and reports each commit.

    python writer_child.py URL NAME COUNT [--shapes N] [--hang-at K]

Prints ``committed <evaluation id> <kernel id>`` (flushed) after each commit returns, and
``ready`` once the archive is open. With ``--hang-at K``, the K-th record (1-based) stops
inside its transaction, after the evaluation row and before its shape rows, prints
``mid-transaction`` and sleeps, waiting for the test to kill it. Every writer shares one task
and half of its kernel sources with the others, so deduplication races are exercised.
"""

from __future__ import annotations

import argparse
import sys
import time

from sqlalchemy import event

from archive import Archive, KernelSpec
from archive.testing import make_result, make_task


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("name")
    parser.add_argument("count", type=int)
    parser.add_argument("--shapes", type=int, default=5)
    parser.add_argument("--hang-at", type=int, default=0)
    args = parser.parse_args()

    archive = Archive.open(args.url)
    task = make_task("shared")
    done = 0
    if args.hang_at:

        @event.listens_for(archive.db.engine, "before_cursor_execute")
        def hang(conn, cursor, statement, params, context, executemany) -> None:  # noqa: ANN001
            if done + 1 == args.hang_at and statement.lstrip().upper().startswith("INSERT INTO SHAPE_RESULTS"):
                print("mid-transaction", flush=True)
                time.sleep(600)

    print("ready", flush=True)
    for i in range(args.count):
        source = f"// shared kernel {i}\n" if i % 2 == 0 else f"// kernel {args.name} {i}\n"
        ids = archive.record(task, KernelSpec(source, params={"i": i}), make_result(task, n_shapes=args.shapes))
        done += 1
        print(f"committed {ids.evaluation_id} {ids.kernel_id}", flush=True)
    archive.close()


if __name__ == "__main__":
    sys.exit(main())
