"""The state directory as every ``neutrino`` subcommand sees it.

Where its files are (``Layout``), how its configuration is loaded and checked
(``load_config``), where its APIs answer (``endpoints``) and how a user runs
``neutrino`` (``self_command``).  Shared by ``main``, ``demo`` and ``console``;
it imports none of them.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from neutrino import config as nconfig
from neutrino.cli import process
from neutrino.config_checks import validate

DEFAULT_STATE_DIR = "/var/lib/neutrino"
#: Name of the API server's pidfile and log.
SERVER = "server"


class CLIError(Exception):
    """An error reported to the user as ``error: <message>`` (no traceback)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def conf(self) -> Path:
        return self.root / "neutrino.conf"

    @property
    def log_dir(self) -> Path:
        return self.root / "log"

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def lock(self) -> Path:
        return self.run_dir / "neutrino.lock"

    def log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def pidfile(self, name: str) -> process.PidFile:
        return process.PidFile(self.run_dir / f"{name}.pid")

    def credential_files(self) -> list[Path]:
        return [self.root / n for n in ("admin-openrc", "demo-openrc", "clouds.yaml")]

    @property
    def port_offset_file(self) -> Path:
        """The ``--port-offset`` of the last ``up`` (kept by ``down``): the credential files
        name those ports, so a later ``up`` without the option (after a crash) uses it again."""
        return self.run_dir / "port-offset"


def layout_of(args: argparse.Namespace) -> Layout:
    """The layout of ``--state-dir`` (absolute)."""
    return Layout(Path(args.state_dir).expanduser().absolute())


# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------


def load_config(
    path: Path, state_dir: Path, port_offset: int = 0, overrides: dict[tuple[str, str], str] | None = None
) -> nconfig.Config:
    """Load and validate; raises CLIError with every problem found."""
    if not path.exists():
        raise CLIError(f"{path} does not exist (neutrino up writes it on its first run)")
    try:
        cfg = nconfig.load(
            path, state_dir=state_dir, overrides=[(sec, name, val) for (sec, name), val in (overrides or {}).items()]
        )
        cfg = with_port_offset(cfg, port_offset)
    except nconfig.ConfigError as exc:
        raise CLIError(f"bad configuration: {exc}") from None
    problems = validate(cfg)
    if problems:
        raise CLIError("bad configuration in {}:\n  {}".format(path, "\n  ".join(problems)))
    return cfg


def with_port_offset(cfg: nconfig.Config, offset: int) -> nconfig.Config:
    """``cfg`` with every API port moved by ``offset`` (for running several instances)."""
    if not offset:
        return cfg
    return cfg.with_overrides(
        {
            ("DEFAULT", "bind_port"): str(cfg.default.bind_port + offset),
            ("identity", "bind_port"): str(cfg.identity.bind_port + offset),
            ("compute", "bind_port"): str(cfg.compute.bind_port + offset),
            ("image", "bind_port"): str(cfg.image.bind_port + offset),
            ("metadata", "bind_port"): str(cfg.metadata.bind_port + offset),
            ("metadata", "nova_metadata_port"): str(cfg.metadata.nova_metadata_port + offset),
        }
    )


# --------------------------------------------------------------------------
# Endpoints
# --------------------------------------------------------------------------


def _client_host(bind_host: str) -> str:
    """Where a local client reaches a server bound to ``bind_host``."""
    if bind_host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if bind_host == "::":
        return "[::1]"
    if ":" in bind_host:
        return f"[{bind_host}]"
    return bind_host


def endpoints(cfg: nconfig.Config) -> dict[str, str]:
    """Where a local client reaches the identity and network APIs (``https://`` with TLS on)."""
    sch = "https" if cfg.default.use_ssl else "http"
    return {
        "identity": f"{sch}://{_client_host(cfg.identity.bind_host)}:{cfg.identity.bind_port}/v3",
        "network": f"{sch}://{_client_host(cfg.default.bind_host)}:{cfg.default.bind_port}/",
    }


def self_command() -> str:
    """How the user runs this command: `neutrino` if PATH finds this one, else its full path."""
    mine = Path(sys.executable).parent / "neutrino"
    found = shutil.which("neutrino")
    if found and mine.exists() and Path(found).resolve() == mine.resolve():
        return "neutrino"
    return str(mine) if mine.exists() else "neutrino"
