"""Stand-in for pypa's get-pip.py, used by ansible-test to put pip into the
empty virtual environments it creates for sanity tests.

ansible-test downloads get-pip.py from a host these machines cannot reach;
hack/sanity instead places this file in ansible-test's cache, next to the pip
wheel it fetched from PyPI, and ansible-test runs it with pip's install
arguments (for example `--disable-pip-version-check pip==24.2`).
"""

import glob
import os
import sys

GET_PIP_ONLY_OPTIONS = {"--no-setuptools", "--no-wheel", "--no-pip"}

here = os.path.dirname(os.path.abspath(__file__))
wheels = sorted(glob.glob(os.path.join(here, "pip-*-py3-none-any.whl")))
if not wheels:
    sys.exit(f"no pip wheel next to {__file__}: run hack/sanity, which downloads it")
sys.path.insert(0, wheels[-1])

from pip._internal.cli.main import main as pip_main  # noqa: E402

arguments = [argument for argument in sys.argv[1:] if argument not in GET_PIP_ONLY_OPTIONS]
sys.exit(pip_main(["install", "--upgrade", *arguments]))
