"""Check that the local stack's outside parts are installed, and say how to install what is missing.

Run by `make test` and `make demo` before anything starts, so a missing emulator is one
clear error, not a skipped test or a traceback in the middle of a run. It asks the same
question the emulators ask when they start (`emulators.component_problem`), so the two agree.
"""

from __future__ import annotations

import subprocess
import sys

from infra.local.emulators import INSTALL_HINT, FirestoreEmulator, PubSubEmulator, component_problem


def problems() -> list[str]:
    found = [component_problem(e.component_dir, e.name) for e in (PubSubEmulator, FirestoreEmulator)]
    return list(dict.fromkeys(p for p in found if p))  # gcloud or Java missing: said once


def main() -> int:
    found = problems()
    if found:
        sys.stderr.write("The local stack is incomplete:\n  - " + "\n  - ".join(found) + f"\nTo fix: {INSTALL_HINT}\n")
        return 1
    try:
        subprocess.run(["gcloud", "--version"], check=True, capture_output=True, timeout=60)
    except (subprocess.SubprocessError, OSError) as exc:
        sys.stderr.write(f"`gcloud --version` failed ({type(exc).__name__}).\nTo fix: {INSTALL_HINT}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
