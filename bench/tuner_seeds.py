"""How often ``rae tune-engine``'s held-out check confirms a gain, over seeds: a real one and none at all.

    python -m bench.tuner_seeds [--seeds 10]

Runs in a throwaway project with two engines of the bundled catalog, each study a simulated judge on the bundled
labelled set (``--simulated-judge``), so the truth is known:

- ``weak-title`` (``fields = {title = 0.05, description = 1.0}``, the title's weight tuned in [0, 5]) with a judge at
  kappa 0.6 and 10 human-labelled queries in each part: a real gain (the humans' labels show about +0.1 on held-out
  queries), which the check should confirm;
- ``title-b`` (``fields = {title = 1.0}``, BM25's b tuned in [0.70, 0.80]) with a judge at kappa 0.2 and no human
  labels: no real effect, which the check should not confirm.

Prints one JSON line per study and a summary line: how many of the seeds confirmed each.
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CONFIG = """tracking_uri = "none"

[engines.weak-title]
kind = "bm25"
fields = { title = 0.05, description = 1.0 }
tune = { "fields.title" = [0.0, 5.0] }

[engines.title-b]
kind = "bm25"
fields = { title = 1.0 }
tune = { b = [0.70, 0.80] }
"""
CASES = {
    "real gain": ["weak-title", "--simulated-judge", "0.6", "--human-queries", "10"],
    "no effect": ["title-b", "--simulated-judge", "0.2", "--human-queries", "0"],
}


def study(directory: Path, case: list[str], seed: int) -> dict:
    command = [sys.executable, "-m", "rae", "tune-engine", *case, "--trials", "12", "--split", "all", "--queries", "120", "--seed", str(seed),
               "--no-write-config", "--study", f"{case[0]}-{seed}", "--json"]
    done = subprocess.run(command, cwd=directory, capture_output=True, text=True, check=True)
    result = json.loads(done.stdout)
    truth = next((n for n in result["notes"] if n.startswith("truth")), "")
    return {"engine": case[0], "seed": seed, "gain_confirmed": result["gain_confirmed"], "heldout": result["heldout"]["difference"] if result["heldout"] else None,
            "truth": truth}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    seeds = range(parser.parse_args().seeds)
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / "rae.toml").write_text(CONFIG)
        confirmed = {}
        for name, case in CASES.items():
            rows = [study(Path(directory), case, seed) for seed in seeds]
            for row in rows:
                print(json.dumps(row), flush=True)
            confirmed[name] = sum(r["gain_confirmed"] for r in rows)
    print(json.dumps({"seeds": len(seeds), "confirmed": confirmed}))


if __name__ == "__main__":
    main()
