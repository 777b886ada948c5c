"""The README's table of `reliable` version 1 against version 2 on the zoo, from the stored rows.

    python results/scripts/compare_reliable.py results/fashion-mnist.jsonl
"""

import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
old, new = {}, {}
for r in rows:
    if r['protocol'] != 'reliable' or r.get('n_examples') != 1000: continue
    v = r['params'].get('version', 1)
    (new if v == 2 else old)[r['model']] = r
NEW = ('<-expectation', 'hart')
print("| model | clean (all 4 draws / 1 draw) | `reliable` v1 | v2 | points lower | kills of v2's new members | flags (v2) | run time v2 |")
print("|---|---|---|---|---|---|---|---|")
for m in sorted(new, key=lambda m: -new[m]['robust_accuracy']):
    n, o = new[m], old.get(m)
    added = {k: v for k, v in n['member_kills'].items() if any(t in k for t in NEW) and v}
    print(f"| {m} | {100*n['clean_accuracy']:.1f} / {100*n['clean_accuracy_one_draw']:.1f} | {100*o['robust_accuracy']:.1f} | {100*n['robust_accuracy']:.1f} | "
          f"{100*(o['robust_accuracy']-n['robust_accuracy']):+.1f} | {', '.join(f'{k} {v}' for k,v in added.items()) or '-'} | {', '.join(n['flags']) or '-'} | {n['runtime_s']:.0f} s |")
