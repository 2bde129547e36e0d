"""``autotuner export --task NAME... --out DIR``: verified kernels as a pip-installable package."""

from __future__ import annotations

import argparse
import json

from autotuner.cli.common import add_archive_options, archive_url, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write the archive's verified kernels as a pip-installable torch.library package")
    p.add_argument("--task", nargs="+", required=True, help="task names, ids or hash prefixes, one op each")
    p.add_argument("--out", required=True, help="folder to write the package into")
    p.add_argument("--name", default="tuned_kernels", help="package name and op namespace (default: tuned_kernels)")
    add_archive_options(p)
    p.add_argument("--gpu-name", metavar="NAME", help="export the kernels verified on this GPU (default: this machine's)")
    p.add_argument("--json", action="store_true", help="print what was exported as JSON to stdout")
    p.add_argument("--skip-reverify", action="store_true",
                   help="do not re-verify before writing (recorded as such in metadata.json; not for release)")
    p.add_argument("--no-record", action="store_true", help="do not record the re-verifications in the archive")
    p.add_argument("--wheel", action="store_true", help="also build the wheel into OUT/dist (no network)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from archive import Archive
    from autotuner.export import build_wheel, export_package

    with Archive.open(archive_url(args), create=False) as archive:
        out = export_package(archive, args.task, args.out, args.name, gpu=args.gpu_name,
                             skip_reverify=args.skip_reverify, record=not args.no_record, force=args.force)
    meta = json.loads((out / args.name / "metadata.json").read_text())
    if args.json:
        wheel = str(build_wheel(out)) if args.wheel else None
        print_json({"out": str(out), "namespace": args.name, "wheel": wheel, "metadata": meta})
        return 0
    print(f"exported {len(meta['ops'])} ops to {out} (namespace torch.ops.{args.name}, verified on {meta['gpu']}):")
    for op, m in meta["ops"].items():
        check = "re-verified" if m["reverification"].get("reverified") else f"NOT re-verified ({m['reverification']['reason']})"
        speed = f"{m['speedup_eager']:.2f}x vs eager" if m.get("speedup_eager") else "no eager baseline"
        print(f"  {op:<28} kernel {m['kernel_id']} ({m['dtype']}, {speed}), {check}")
    if args.wheel:
        print(f"wheel: {build_wheel(out)}")
    print(f"install: pip install '{out}[cuda12]' (or [cuda13]); test: python -m pytest {out}/tests")
    return 0
