"""PostgreSQL: a cluster kept in a private folder (it persists across runs), one child process."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from bot.core.local_servers.common import (
    LocalServer,
    LocalServerError,
    require_binary,
    service_user,
)


class PostgresServer(LocalServer):
    """`postgres` in the foreground on a loopback port; trust login as `postgres` on loopback.

    The cluster lives in `root/data` and is created by `initdb` on first start; as root it
    runs as the `postgres` (or `nobody`) account, since PostgreSQL refuses root.
    `durable=False` turns fsync off (tests).
    """

    name = "postgres"
    stop_signal = signal.SIGINT  # fast shutdown: roll back open transactions, then exit
    superuser = "postgres"

    def __init__(
        self, root: Path, port: int, host: str = "127.0.0.1", *, durable: bool = True
    ) -> None:
        super().__init__(root, port, host, service_user("postgres", "nobody"))
        self.durable = self.keep_data = durable

    @property
    def data_dir(self) -> Path:
        """The cluster's data folder."""
        return self.root / "data"

    @property
    def url(self) -> str:
        """The `postgres` maintenance database (driver left to the client)."""
        return self.database_url("postgres")

    def database_url(self, database: str, driver: str = "") -> str:
        """The URL of `database`; `driver="psycopg"` gives `postgresql+psycopg://`."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{self.superuser}@{self.host}:{self.port}/{database}"

    def prepare(self) -> None:
        """Creates the cluster on first use."""
        super().prepare()
        if (self.data_dir / "PG_VERSION").exists():
            return
        initdb = require_binary("initdb")
        result = subprocess.run(
            [
                initdb,
                "-D",
                str(self.data_dir),
                "-U",
                self.superuser,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
            ],
            cwd=self.root,
            capture_output=True,
            text=True,
            check=False,
            timeout=180,
            user=self.user.pw_uid if self.user else None,
            group=self.user.pw_gid if self.user else None,
            extra_groups=[] if self.user else None,
        )
        if result.returncode != 0:
            raise LocalServerError(
                f"initdb failed in {self.data_dir} (the folder must be writable by "
                f"{self.user.pw_name if self.user else 'you'}):\n{result.stdout}{result.stderr}"
            )

    def command(self) -> list[str]:
        """`postgres` on the port, its socket in the private folder."""
        options = ["-c", f"listen_addresses={self.host}", "-c", "max_connections=200"]
        if not self.durable:
            options += ["-c", "fsync=off", "-c", "synchronous_commit=off"]
        return [
            require_binary("postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-k",
            str(self.root),
            *options,
        ]

    def is_ready(self) -> bool:
        """`pg_isready` says the server accepts connections."""
        result = subprocess.run(
            [require_binary("pg_isready"), "-q", "-h", self.host, "-p", str(self.port)],
            check=False,
            timeout=10,
        )
        return result.returncode == 0

    def create_databases(self, *names: str) -> None:
        """Creates each database in `names` that does not exist yet."""
        from sqlalchemy import create_engine, text

        engine = create_engine(
            self.database_url("postgres", "psycopg"), isolation_level="AUTOCOMMIT"
        )
        try:
            with engine.connect() as connection:
                existing = set(
                    connection.execute(text("SELECT datname FROM pg_database")).scalars()
                )
                for name in names:
                    if name not in existing:
                        connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
