"""Regenerate the Python code of protos/ into cgrates/v1/ (``make protos``).

``--check`` regenerates into a temporary folder and fails if the committed code differs, so CI
catches a proto edited without regenerating (or generated code edited by hand).
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

REPO = Path(__file__).resolve().parent.parent
PROTOS = REPO / "protos"
OUT_PKG = Path("cgrates") / "v1"


def generate(out_root: Path) -> list[Path]:
    include = Path(protoc.__file__).parent / "_proto"
    files = sorted(PROTOS.glob("cgrates/v1/*.proto"))
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{include}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        *[str(f) for f in files],
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    pkg = out_root / OUT_PKG
    (out_root / "cgrates" / "__init__.py").write_text('"""Generated from protos/ (cgrates.v1)."""\n')
    (pkg / "__init__.py").write_text('"""Generated from protos/cgrates/v1 by scripts/gen_protos.py; do not edit."""\n')
    return sorted(p for p in pkg.iterdir() if p.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="fail if committed code drifts")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        generated = generate(Path(tmp))
        target = REPO / OUT_PKG
        if args.check:
            names = {p.name for p in generated}
            committed = {p.name for p in target.iterdir() if p.is_file()} if target.exists() else set()
            drift = sorted(names ^ committed)
            drift += [p.name for p in generated if p.name in committed and not filecmp.cmp(p, target / p.name, shallow=False)]
            if drift:
                print("generated protobuf code drifts from protos/: " + ", ".join(drift), file=sys.stderr)
                print("run `make protos` and commit the result", file=sys.stderr)
                return 1
            print(f"protos: {len(generated)} generated files match")
            return 0
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        for p in generated:
            shutil.copy2(p, target / p.name)
        shutil.copy2(Path(tmp) / "cgrates" / "__init__.py", REPO / "cgrates" / "__init__.py")
        print(f"protos: wrote {len(generated)} files to {OUT_PKG}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
