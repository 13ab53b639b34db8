"""kiln's in-tree PEP 517 build backend (pyproject.toml): builds the module with CMake and packs
it into a wheel, with the standard library only, so that pip needs nothing from an index.

The CMake build directory is $KILN_BUILD_DIR, else build/ in the repository (the one
scripts/build.sh makes): a tree that is already built only links the module. The module is built
for the interpreter that runs pip (-DPYTHON_EXECUTABLE).
"""
import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        m = re.search(r"project\(kiln VERSION ([0-9.]+)", f.read())
    return m.group(1)


def _tag():
    py = f"cp{sys.version_info.major}{sys.version_info.minor}"
    plat = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    return f"{py}-{py}-{plat}"


def _metadata():
    return (f"Metadata-Version: 2.1\nName: kiln\nVersion: {_version()}\n"
            "Summary: An inference optimizer and runtime for ONNX models\n"
            "Requires-Python: >=3.9\n")


def _wheel_file():
    return (f"Wheel-Version: 1.0\nGenerator: kiln_build\nRoot-Is-Purelib: false\n"
            f"Tag: {_tag()}\n")


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    d = os.path.join(metadata_directory, f"kiln-{_version()}.dist-info")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "METADATA"), "w") as f:
        f.write(_metadata())
    with open(os.path.join(d, "WHEEL"), "w") as f:
        f.write(_wheel_file())
    return os.path.basename(d)


def _run(cmd):
    print("kiln_build: " + " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def _build_module():
    build = os.environ.get("KILN_BUILD_DIR", os.path.join(ROOT, "build"))
    cmake = shutil.which("cmake") or "cmake"
    # The interpreter itself, not a venv's link to it: the module is the same for both, and the
    # build directory keeps one interpreter however many venvs install from it.
    python = os.path.realpath(sys.executable)
    configure = [cmake, "-S", ROOT, "-B", build, f"-DPYTHON_EXECUTABLE={python}"]
    if not os.path.exists(os.path.join(build, "CMakeCache.txt")):
        configure += ["-DCMAKE_BUILD_TYPE=Release"]
        if shutil.which("ninja"):
            configure += ["-G", "Ninja"]
    _run(configure)
    _run([cmake, "--build", build, "--target", "kiln_python", "--parallel"])
    pkg = os.path.join(build, "python", "kiln")
    if not any(n.startswith("_kiln") for n in os.listdir(pkg)):
        raise RuntimeError(f"kiln_build: no module in {pkg}: is pybind11-dev installed?")
    return pkg


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    pkg = _build_module()
    name = f"kiln-{_version()}-{_tag()}.whl"
    path = os.path.join(wheel_directory, name)
    dist = f"kiln-{_version()}.dist-info"
    records = []

    def add(zf, arcname, data):
        zf.writestr(arcname, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        records.append(f"{arcname},sha256={digest},{len(data)}")

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for n in sorted(os.listdir(pkg)):
            if n == "__init__.py" or (n.startswith("_kiln") and n.endswith(".so")):
                with open(os.path.join(pkg, n), "rb") as f:
                    add(zf, f"kiln/{n}", f.read())
        add(zf, f"{dist}/METADATA", _metadata().encode())
        add(zf, f"{dist}/WHEEL", _wheel_file().encode())
        records.append(f"{dist}/RECORD,,")
        zf.writestr(f"{dist}/RECORD", "\n".join(records) + "\n")
    return name
