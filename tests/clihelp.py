"""The ``safegrid`` command line run inside the test process, for tests that run one
command over many inputs.

:func:`run_in_process` invokes the same click group as ``.venv/bin/safegrid``
(``webmap.cli:main``, the console script's target) with click's ``CliRunner``: the same
argument parsing, command code, error lines and exit codes, without the seconds a new
process spends importing. It answers like :func:`tests.conftest.run_cli` (a
``CompletedProcess`` with ``returncode``, ``stdout`` and ``stderr``); an exception the
command let escape is in ``stderr`` as the traceback a process would have printed.
Every test file using it still runs each of its commands once as a real process.
"""

from __future__ import annotations

import os
import subprocess
import traceback

from click.testing import CliRunner

from layers.db import engine

__all__ = ["run_in_process"]


def run_in_process(db_url: str, *args: str, input: str | None = None,
                   env: dict | None = None) -> subprocess.CompletedProcess:
    """``safegrid ARGS`` against ``db_url`` (and ``env``), in this process.

    ``layers.db.engine()`` keeps one engine per argument list, the default one included;
    it is forgotten before and after the command, so that the command connects to
    ``db_url`` as a new process would and leaves no pool behind.
    """
    from webmap.cli import main

    full_env = {"SAFEGRID_DATABASE_URL": db_url, **(env or {})}
    saved = {k: os.environ.get(k) for k in full_env}
    os.environ.update(full_env)
    engine.cache_clear()
    try:
        # help is wrapped at 78 columns, as a process writing to a pipe wraps it
        result = CliRunner().invoke(main, list(args), input=input, catch_exceptions=True,
                                    prog_name="safegrid", terminal_width=78)
        engine().dispose()
    finally:
        engine.cache_clear()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(["safegrid", *args], result.exit_code, result.stdout,
                                       stderr)
