"""Download the wheels the GPU machine's image lacks into .whl/ (for `.ci/device_gpu.sh install`).

    python3 .ci/device_wheels.py

Starts from the course's pins that the image does not hold at our versions (FORCE), follows their requirements
(markers evaluated for CPython 3.12 on Linux) and skips what the image has (KINDS.md's package list, read from the
tool library). Every wheel is fetched with --no-deps for cp312 manylinux; about 32 MB in all.
"""
import glob
import os
import re
import subprocess
import sys
import zipfile

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name as cn

KINDS = "/work/.library/device/KINDS.md"
IMAGE = set(cn(x.strip()) for x in re.search(r"Packages: (absl.*?)\.\n", open(KINDS).read()).group(1).split(","))
FORCE = {"transformers": "5.24.0", "trl": "1.16.0", "peft": "0.21.2", "datasets": "5.2.0", "tokenizers": "0.23.3",
         "gguf": "0.19.0", "papermill": "2.7.0", "ipykernel": "7.4.0", "nbformat": "5.11.1"}
ENV = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux", "platform_system": "Linux",
       "os_name": "posix", "platform_machine": "x86_64", "implementation_name": "cpython",
       "platform_python_implementation": "CPython", "extra": ""}
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64", "manylinux_2_24_x86_64", "manylinux_2_31_x86_64", "manylinux_2_34_x86_64",
             "manylinux_2_35_x86_64", "any"]
D = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".whl")


def requirements(wheel: str) -> list[str]:
    """The names a wheel requires on the GPU machine (markers evaluated there)."""
    z = zipfile.ZipFile(wheel)
    meta = z.read(next(x for x in z.namelist() if x.endswith(".dist-info/METADATA"))).decode()
    out = []
    for line in meta.splitlines():
        if line.startswith("Requires-Dist:"):
            req = Requirement(line.split(":", 1)[1].strip())
            if not req.marker or req.marker.evaluate(ENV):
                out.append(req.name)
    return out


def main() -> None:
    os.makedirs(D, exist_ok=True)
    plat = [a for p in PLATFORMS for a in ("--platform", p)]
    todo, seen = list(FORCE), set()
    while todo:
        name = todo.pop()
        if cn(name) in seen:
            continue
        seen.add(cn(name))
        spec = f"{name}=={FORCE[name]}" if name in FORCE else name
        r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                            "--python-version", "3.12", "--implementation", "cp", *plat, "-d", D, spec],
                           capture_output=True, text=True)
        if r.returncode:
            sys.exit(f"pip download {spec} failed: {r.stderr[-300:]}")
        wheel = next(f for f in glob.glob(D + "/*.whl") if cn(os.path.basename(f).split("-")[0]) == cn(name))
        todo += [n for n in requirements(wheel) if cn(n) not in IMAGE or cn(n) in FORCE]
    print(f"{len(seen)} wheels in {D}: {', '.join(sorted(seen))}")


if __name__ == "__main__":
    main()
