"""The BentoML service: POST /forecast with adaptive batching, plus /metadata.

The Bento build writes bento_manifest.json beside this file: it pins the exact model version
(referenced at class scope so it is packaged) and the feature-store configuration.
"""

from __future__ import annotations

import json
from pathlib import Path

import bentoml
from bentoml.exceptions import InvalidArgument, NotFound, ServiceUnavailable
from feast import FeatureStore

from demandops.errors import FeatureStoreError, UnknownSeriesError
from serving.predictor import Predictor
from serving.schemas import ForecastItem, ForecastResult
from training.bundle import ForecasterBundle

HERE = Path(__file__).parent
MANIFEST_FILE = HERE / "bento_manifest.json"
FEAST_DIR = HERE / "feast"


def _manifest() -> dict:
    if not MANIFEST_FILE.is_file():
        raise FileNotFoundError(
            f"{MANIFEST_FILE} is missing: serve a Bento built by the deployment asset (make serve), "
            "not the source folder"
        )
    return json.loads(MANIFEST_FILE.read_text())


MANIFEST = _manifest()


@bentoml.service(name="demand_forecaster_service", traffic={"timeout": 30})
class DemandForecastService:
    model_ref = bentoml.models.BentoModel(MANIFEST["bento_model_tag"])

    def __init__(self) -> None:
        self.bundle = ForecasterBundle.load(Path(self.model_ref.path))
        self.predictor = Predictor(
            self.bundle, FeatureStore(repo_path=str(FEAST_DIR)), model_version=str(MANIFEST["model_version"])
        )

    @bentoml.api(batchable=True, max_batch_size=256, max_latency_ms=1000)
    def forecast(self, items: list[ForecastItem]) -> list[ForecastResult]:
        try:
            return self.predictor.forecast(items)
        except UnknownSeriesError as exc:
            raise NotFound(str(exc)) from exc
        except ValueError as exc:
            raise InvalidArgument(str(exc)) from exc
        except FeatureStoreError as exc:
            raise ServiceUnavailable(str(exc)) from exc

    @bentoml.api(route="/metadata")
    def metadata(self) -> dict:
        return {
            "model_name": MANIFEST["model_name"],
            "model_version": MANIFEST["model_version"],
            "lifecycle_state_at_build": MANIFEST["lifecycle_state"],
            "feature_service": self.bundle.meta.feature_service,
            "dataset_version": self.bundle.meta.dataset_version,
            "horizon": self.bundle.meta.horizon,
            "frequency": self.bundle.meta.frequency,
        }
