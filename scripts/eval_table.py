"""Print an evaluation JSON (``video3d evaluate --json`` or ``weights/*.eval.json``) as a Markdown table.

    python scripts/eval_table.py weights/gastnet_27f.eval.json

The model card and the README quote this output as it is printed.
"""

from __future__ import annotations

import json
import sys


def table(result: dict) -> str:
    rows = ["| action | frames | P1 MPJPE | P2 P-MPJPE | N-MPJPE | MPJVE |", "|---|---:|---:|---:|---:|---:|"]
    for name, a in result["actions"].items():
        rows.append(f"| {name} | {a['frames']:,} | {a['mpjpe']:.1f} | {a['p_mpjpe']:.1f} | {a['n_mpjpe']:.1f} "
                    f"| {a['mpjve']:.2f} |")
    m = result["average"]
    rows.append(f"| **mean of {len(result['actions'])} groups** | {result['frames']:,} | **{m['mpjpe']:.1f}** "
                f"| **{m['p_mpjpe']:.1f}** | {m['n_mpjpe']:.1f} | {m['mpjve']:.2f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table(json.loads(open(sys.argv[1]).read())))
