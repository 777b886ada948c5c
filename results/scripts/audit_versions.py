"""Give stored audits made before audits recorded it the version of the protocol they audited (run once, kept as the record).

An audit without ``protocol_version`` ran at the commit in effect at its timestamp (audits run in
worktrees of committed heads); the version is read from that commit's preset file. Audits that
have the field are left alone.

    python results/scripts/audit_versions.py results/audits/fashion-mnist.jsonl
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml


def version_at(timestamp: str, protocol: str) -> int:
    commit = subprocess.run(["git", "rev-list", "-1", f"--before={timestamp}", "HEAD"], capture_output=True, text=True, check=True)
    text = subprocess.run(["git", "show", f"{commit.stdout.strip()}:attacks/{protocol}.yaml"], capture_output=True, text=True, check=True)
    return int(yaml.safe_load(text.stdout).get("version", 1))


def main(path: Path) -> None:
    audits = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for audit in audits:
        if audit.get("protocol_version") is None:
            audit["protocol_version"] = version_at(audit["timestamp"], audit["protocol"])
            print(f"{audit['model']} {audit['timestamp']}: version {audit['protocol_version']}")
    path.write_text("".join(json.dumps(audit) + "\n" for audit in audits))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
