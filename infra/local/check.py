"""Check that the local stack's outside parts are installed, and say how to install what is missing.

Run by `make test` and `make demo` before anything starts, so a missing emulator is one
clear error, not a skipped test or a traceback in the middle of a run.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

INSTALL = (
    "Install the Google Cloud CLI with its emulators and Java 17:\n"
    "  apt-get install google-cloud-cli google-cloud-cli-pubsub-emulator "
    "google-cloud-cli-firestore-emulator openjdk-17-jre-headless\n"
    "(from Google's apt repository: https://cloud.google.com/sdk/docs/install#deb),\n"
    "or `gcloud components install pubsub-emulator cloud-firestore-emulator beta`."
)


def problems() -> list[str]:
    out: list[str] = []
    gcloud = shutil.which("gcloud")
    if not gcloud:
        return ["`gcloud` is not on PATH."]
    if not shutil.which("java"):
        out.append("`java` is not on PATH (the emulators run on Java 17+).")
    root = Path(gcloud).resolve().parent.parent
    candidates = [root / "platform", Path("/usr/lib/google-cloud-sdk/platform")]
    for name, folder in (("Pub/Sub emulator", "pubsub-emulator"), ("Firestore emulator", "cloud-firestore-emulator")):
        if not any((c / folder).is_dir() for c in candidates):
            out.append(f"the {name} is not installed (no platform/{folder} under the Cloud SDK).")
    return out


def main() -> int:
    found = problems()
    if found:
        sys.stderr.write("The local stack is incomplete:\n  - " + "\n  - ".join(found) + "\n" + INSTALL + "\n")
        return 1
    try:
        subprocess.run(["gcloud", "--version"], check=True, capture_output=True, timeout=60)
    except (subprocess.SubprocessError, OSError) as exc:
        sys.stderr.write(f"`gcloud --version` failed ({type(exc).__name__}).\n{INSTALL}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
