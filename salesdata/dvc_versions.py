"""Dataset versions through DVC: the version of the data is the DVC hash of the data folder."""

from __future__ import annotations

from pathlib import Path

import yaml
from dvc.repo import Repo

from demandops.errors import DatasetVersionError

LOCAL_REMOTE_NAME = "local"


def dvc_file(data_dir: Path) -> Path:
    """The `.dvc` file that tracks a data folder (`data/` -> `data.dvc`)."""
    return data_dir.with_name(f"{data_dir.name}.dvc")


def ensure_repo(project_dir: Path, *, remote_dir: Path | None = None) -> Repo:
    """Open the DVC repo at project_dir, initialising it (and a local remote) if absent."""
    if not (project_dir / ".dvc").is_dir():
        no_scm = not (project_dir / ".git").exists()
        Repo.init(str(project_dir), no_scm=no_scm)
    repo = Repo(str(project_dir))
    if remote_dir is not None and LOCAL_REMOTE_NAME not in repo.config["remote"]:
        with repo.config.edit() as conf:
            conf["remote"][LOCAL_REMOTE_NAME] = {"url": str(remote_dir)}
            conf["core"]["remote"] = LOCAL_REMOTE_NAME
        repo = Repo(str(project_dir))
    return repo


def recorded_version(data_dir: Path) -> str:
    """The hash recorded in the `.dvc` file, without checking the folder against it."""
    path = dvc_file(data_dir)
    if not path.is_file():
        raise DatasetVersionError(
            f"{data_dir} is not tracked by DVC: {path} does not exist (run `dvc add {data_dir.name}`)"
        )
    outs = yaml.safe_load(path.read_text()).get("outs") or []
    if not outs or "md5" not in outs[0]:
        raise DatasetVersionError(f"{path} has no md5 in its outs; expected a file written by `dvc add`")
    return str(outs[0]["md5"]).removesuffix(".dir")


def dataset_version(project_dir: Path, data_dir: Path) -> str:
    """The DVC hash of data_dir, refusing data that differs from what DVC recorded."""
    version = recorded_version(data_dir)
    status = Repo(str(project_dir)).status(targets=[str(dvc_file(data_dir))])
    if status:
        raise DatasetVersionError(
            f"{data_dir} differs from {dvc_file(data_dir).name} (DVC status: {status}); "
            "record it with `dvc add` or restore it with `dvc checkout`"
        )
    return version


def track(project_dir: Path, data_dir: Path) -> str:
    """Record the current content of data_dir with DVC and return its version."""
    ensure_repo(project_dir).add(str(data_dir))
    return recorded_version(data_dir)


def push(project_dir: Path) -> int:
    """Push tracked data to the default remote; returns the number of objects pushed."""
    return int(ensure_repo(project_dir).push())


def pull(project_dir: Path, data_dir: Path) -> bool:
    """Fetch data_dir from the default remote; False when the remote does not hold it."""
    from dvc.exceptions import CheckoutError, DownloadError

    repo = ensure_repo(project_dir)
    if not repo.config["core"].get("remote"):
        return False
    try:
        repo.pull(targets=[str(dvc_file(data_dir))])
    except (CheckoutError, DownloadError):
        return False
    return data_dir.is_dir()


def checkout(project_dir: Path, data_dir: Path) -> str:
    """Make data_dir match its `.dvc` file again (e.g. after checking out an older data.dvc)."""
    Repo(str(project_dir)).checkout(targets=[str(dvc_file(data_dir))], force=True)
    return dataset_version(project_dir, data_dir)
