"""Build the Bento of one model version.

BentoML keeps its stores in process-wide singletons fixed at first use, so the build runs in a
child process whose BENTOML_HOME points into the profile's state folder. The child runs inside
the generated build context, so the code it packages is exactly the code it imports.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from demandops.errors import DemandopsError
from demandops.settings import Settings
from feature_repo.store import write_store_yaml
from serving.routes import API_VERSION

PACKAGES = ("demandops", "training", "feature_repo", "lifecycle", "monitoring", "serving")
# The checkout these packages are imported from; the Bento carries a copy of them.
SOURCE_ROOT = Path(__file__).resolve().parents[1]
MANIFEST_NAME = "bento_manifest.json"


@dataclass(frozen=True)
class BuiltBento:
    bento_tag: str
    bento_model_tag: str
    model_version: str


def model_tag(settings: Settings, model_version: str) -> str:
    """One BentoML model per MLflow version: rebuilding a version reuses its model."""
    return f"{settings.model.name}:mlflow-v{model_version}"


def prepare_build_context(settings: Settings, ctx: Path, *, model_version: str, lifecycle_state: str) -> Path:
    """A clean folder with our packages, the constraints, the manifest and the Feast config."""
    if ctx.exists():
        shutil.rmtree(ctx)
    for package in PACKAGES:
        shutil.copytree(
            SOURCE_ROOT / package,
            ctx / package,
            ignore=shutil.ignore_patterns("__pycache__", MANIFEST_NAME, "feast"),
        )
    shutil.copy2(SOURCE_ROOT / "constraints.txt", ctx / "constraints.txt")
    manifest = {
        "model_name": settings.model.name,
        "model_version": model_version,
        "lifecycle_state": lifecycle_state,
        "bento_model_tag": model_tag(settings, model_version),
    }
    (ctx / "serving" / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
    write_store_yaml(settings, ctx / "serving" / "feast")
    return ctx


def build_bento(ctx: Path, bundle_dir: Path) -> BuiltBento:
    """Import the bundle into the model store (once per version) and build the Bento; runs in the child."""
    import bentoml
    from bentoml.exceptions import NotFound

    manifest = json.loads((ctx / "serving" / MANIFEST_NAME).read_text())
    tag = manifest["bento_model_tag"]
    labels = {
        "mlflow_model": manifest["model_name"],
        "mlflow_version": manifest["model_version"],
        "api_version": API_VERSION,
    }
    try:
        bentoml.models.get(tag)
    except NotFound:
        with bentoml.models.create(tag, labels=labels) as model:
            shutil.copytree(bundle_dir, model.path, dirs_exist_ok=True)
    bento = bentoml.bentos.build_bentofile(str(ctx / "serving" / "bentofile.yaml"), build_ctx=str(ctx), labels=labels)
    return BuiltBento(bento_tag=str(bento.tag), bento_model_tag=tag, model_version=manifest["model_version"])


def build_in_child(settings: Settings, *, bundle_dir: Path, model_version: str, lifecycle_state: str) -> BuiltBento:
    """Prepare the build context, then build in a child process with the profile's BentoML home."""
    ctx = prepare_build_context(
        settings,
        settings.state / "bento_build" / f"v{model_version}",
        model_version=model_version,
        lifecycle_state=lifecycle_state,
    )
    command = [sys.executable, "-m", "serving.build", "--bundle-dir", str(bundle_dir.resolve())]
    done = subprocess.run(command, env=settings.child_env(), capture_output=True, text=True, cwd=ctx)
    if done.returncode != 0:
        raise DemandopsError(f"bento build of version {model_version} failed:\n{done.stderr[-4000:]}")
    return BuiltBento(**json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle-dir", type=Path, required=True)
    args = parser.parse_args()
    print(json.dumps(asdict(build_bento(Path.cwd(), args.bundle_dir))))


if __name__ == "__main__":
    main()
