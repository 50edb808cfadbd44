"""One typed settings object for every entry point, chosen by profile.

Everything configurable is read here, once, from `DEMANDOPS_*` environment variables
(nested fields use `__`, e.g. `DEMANDOPS_MODEL__HORIZON=7`). Nothing is read at import time:
call `get_settings()` or build `Settings(...)` explicitly (tests do).
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from demandops.errors import DemandopsError, SettingsError
from demandops.frequency import Frequency
from demandops.postgres import DAGSTER_SCHEMA, MLFLOW_SCHEMA, ensure_schema, parse_postgres_url, schema_url

Profile = Literal["local", "production"]
ENV_PREFIX = "DEMANDOPS_"
DEFAULT_STATE_DIRNAME = "state"


class ModelSettings(BaseModel):
    """What is forecast."""

    name: str = Field(default="demand_forecaster", description="Registered model name in MLflow.")
    experiment: str = Field(default="demand_forecaster", description="MLflow experiment of the training runs.")
    quantiles: tuple[float, float, float] = (0.1, 0.5, 0.9)


# Constraints and descriptions live in the types, so that the per-frequency defaults below keep
# them: a subclass field given a plain default would replace the base field, bounds and all.
Periods = Annotated[int, Field(ge=1)]
MAX_HORIZON = 90  # periods; the serving schemas and the CLI take the same bound
Horizon = Annotated[int, Field(ge=1, le=MAX_HORIZON, description="Periods forecast ahead.")]
SeasonalPeriod = Annotated[int, Field(ge=1, description="Season length (also the seasonal-naive baseline's).")]
ValidationPeriods = Annotated[int, Field(ge=1, description="Origins before the holdout used for early stopping.")]
Lags = Annotated[
    tuple[Periods, ...], Field(min_length=1, description="Lag features; the seasonal-naive lags are added to these.")
]
Windows = Annotated[
    tuple[Periods, ...], Field(min_length=1, description="Rolling mean and standard deviation windows.")
]
FeatureTtl = Annotated[int, Field(ge=1, description="How stale an online feature row may be when served.")]


def _ordered(band: tuple[float, float]) -> tuple[float, float]:
    if band[0] > band[1]:
        raise ValueError(f"a band is (low, high): {band[0]} is above {band[1]}")
    return band


Band = Annotated[tuple[Annotated[float, Field(ge=0)], Annotated[float, Field(ge=0)]], AfterValidator(_ordered)]


class Cadence(BaseModel):
    """How data of one frequency is forecast; every count is in periods of that frequency."""

    horizon: Horizon
    seasonal_period: SeasonalPeriod
    backtest_periods: int | None = Field(
        default=None, ge=1, description="Last origins held out for the rolling-origin backtest (default 3 x horizon)."
    )
    validation_periods: ValidationPeriods
    lags: Lags
    windows: Windows
    feature_ttl_periods: FeatureTtl

    @property
    def backtest_origins(self) -> int:
        """Origins in the backtest: the configured count, or three windows of H."""
        return self.backtest_periods or 3 * self.horizon


class DailyCadence(Cadence):
    horizon: Horizon = 14
    seasonal_period: SeasonalPeriod = 7
    validation_periods: ValidationPeriods = 28
    lags: Lags = (1, 2, 3, 4, 5, 6, 7, 14, 28)
    windows: Windows = (7, 28)
    feature_ttl_periods: FeatureTtl = 7


class WeeklyCadence(Cadence):
    horizon: Horizon = 8
    seasonal_period: SeasonalPeriod = 52
    validation_periods: ValidationPeriods = 8
    lags: Lags = (1, 2, 3, 4, 8, 13, 26)
    windows: Windows = (4, 13)
    feature_ttl_periods: FeatureTtl = 3


class MonthlyCadence(Cadence):
    horizon: Horizon = 3
    seasonal_period: SeasonalPeriod = 12
    validation_periods: ValidationPeriods = 6
    lags: Lags = (1, 2, 3, 6)
    windows: Windows = (3, 12)
    feature_ttl_periods: FeatureTtl = 2


class Cadences(BaseModel):
    """One cadence per frequency, e.g. `DEMANDOPS_CADENCES__M__HORIZON=6`."""

    D: DailyCadence = DailyCadence()
    W: WeeklyCadence = WeeklyCadence()
    M: MonthlyCadence = MonthlyCadence()


class GateSettings(BaseModel):
    """Bounds of the data-quality gate on raw sales (see demandops/expectations.py).

    Counts are in partitions: one partition is one period (day, week or month) of sales.
    """

    trailing_partitions: int = Field(default=28, ge=2, description="History a partition's profile is compared with.")
    min_history_partitions: int = Field(default=7, ge=1, description="History needed before profile bounds apply.")
    row_count_band: Band = Field(
        default=(0.6, 1.5), description="Accepted rows of a partition relative to the trailing mean."
    )
    category_mean_band: Band = Field(
        default=(0.25, 4.0), description="Accepted mean units per category relative to the trailing mean."
    )
    batch_partitions: int = Field(default=31, ge=1, description="Partitions validated together; bounds memory.")
    min_category_rows: int = Field(
        default=30, ge=1, description="Rows a category needs in a partition before its mean is judged (noise below)."
    )
    # Plausibility: wide enough that real units are never refused, narrow enough that garbage is.
    max_units: float = Field(
        default=1e9, gt=0, description="Largest units_sold of one row (any series, any period); above is garbage."
    )
    max_price: float = Field(default=1e9, gt=0, description="Largest price of one row; above is garbage.")
    max_units_vs_history: float = Field(
        default=1000.0,
        gt=1,
        description="Largest units_sold of a row relative to the largest other value of its series (at least 1).",
    )
    max_gap_years: float = Field(
        default=10.0, gt=0, description="Largest gap between a period and the nearest other period of the data."
    )


class FeatureQualitySettings(BaseModel):
    """Bounds on the training set the feature store returns (see training/completeness.py)."""

    max_null_share: float = Field(
        default=0.02, ge=0, le=1, description="Largest share of null values a feature may have in a training set."
    )


class TrainingSetSettings(BaseModel):
    """Which origins the training set holds (see training/origins.py)."""

    # Every origin of every series is 16M rows at 25,000 daily series over two years; a global
    # network learns as well from a sample, and memory then follows this budget, not the catalogue.
    older_origin_rows: int = Field(
        default=1_500_000,
        ge=1,
        description="Origins before the backtest and validation windows kept across the catalogue: each series "
        "keeps this share of them, most recent likelier; a small catalogue keeps every one.",
    )
    recency_half_life_years: float = Field(
        default=1.0, gt=0, description="Years back after which an origin is half as likely to be drawn."
    )
    chunk_rows: int = Field(
        default=1_000_000, ge=1, description="Training rows built (retrieved from Feast) and written at a time."
    )


class FeastSettings(BaseModel):
    """Feast's offline store in the local and production profiles: DuckDB, through ibis."""

    # DuckDB takes up to 80% of the machine by default: 14 GB materializing 25,000 series.
    offline_memory_gb: float = Field(
        default=3.0,
        gt=0,
        description="Most memory DuckDB takes for point-in-time joins and materialization; it spills to disk beyond.",
    )


class ClusterSettings(BaseModel):
    """Which stage runs past this machine, and on what (docs/scale.md)."""

    engine: Literal["embedded", "ray"] = Field(
        default="embedded",
        description="Where the statistical models are fitted per series: in the run's process (embedded), or "
        "spread over a Ray cluster by statsforecast's Fugue backend (ray).",
    )
    ray_address: str | None = Field(
        default=None, description="The Ray cluster to use, e.g. ray://head:10001 or auto; empty starts a local Ray."
    )
    embedded_processes: int = Field(
        default=0,
        ge=0,
        description="Worker processes the embedded engine fits the statistical models on; 0: one per core.",
    )


StatisticalModel = Literal["AutoETS", "AutoTheta", "DynamicOptimizedTheta", "AutoARIMA"]


class LifecycleSettings(BaseModel):
    """Guards of the model lifecycle (see lifecycle/states.py)."""

    # The defaults judge against what is achievable on the data at hand: better than seasonal naive,
    # and no worse than the best statistical model a planner would fit per series (bench/README.md).
    naive_margin: float = Field(
        default=0.0, ge=0, lt=1, description="Required relative backtest WAPE gain over seasonal naive."
    )
    statistical_baselines: tuple[StatisticalModel, ...] = Field(
        default=("AutoETS", "DynamicOptimizedTheta"),
        description="statsforecast models the backtest fits per series, at the first origin of each window.",
    )
    # They cost about 0.26 s per daily series and window on one core (AutoETS 0.22 s of it), spread
    # over the cores (cluster.embedded_processes): fitted on every series of a large catalogue they
    # would take most of the run. Their comparison is a paired WAPE ratio, over every step of every
    # window: 500 series make 21,000 paired forecasts of daily data.
    statistical_series: int = Field(
        default=500,
        ge=1,
        description="Most series the statistical baselines are fitted on; a larger catalogue is sampled, "
        "in proportion to its mover classes.",
    )
    # 2%, not 0: the best statistical model is picked in hindsight on the judged rows, while the served
    # choice is cross-validated (training/evaluate.py). Where the served choice is that same model in
    # most folds, selection noise alone left it 0.2% to 0.5% behind (M1, the monthly e2e test).
    statistical_margin: float = Field(
        default=0.02,
        ge=0,
        lt=1,
        description="How much worse than the best statistical baseline's backtest WAPE the model may be.",
    )
    coverage_band: Band = Field(default=(0.75, 0.85), description="Accepted p10-p90 interval coverage in the backtest.")
    promoters: list[str] = Field(
        default=["ci", "local-demo", "demandops-loop"],
        description="Actors allowed to promote to Production and to roll back (demandops-loop: the closed loop).",
    )
    champion_tolerance: float = Field(
        default=0.0,
        ge=0,
        lt=1,
        description="How much worse than the champion's latest-window WAPE a challenger may be.",
    )
    skew_tolerance: float = Field(
        default=1e-5,
        gt=0,
        description="Largest |served - offline| / max(1, |offline|) forecast difference, for Staged.",
    )
    min_soak_hours: float = Field(
        default=0.0, ge=0, description="Time a version must spend in Staged (0 for the demo)."
    )
    live_guard: bool = Field(
        default=False,
        description="Staged -> Production also requires the challenger's shadow WAPE on the champion's live "
        "window to be at least as good as the champion's (off for the demo).",
    )
    live_tolerance: float = Field(
        default=0.0, ge=0, lt=1, description="How much worse than the champion's live WAPE the shadow WAPE may be."
    )
    live_min_forecasts: int = Field(
        default=100, ge=1, description="Scored forecasts the live comparison needs before it can pass."
    )


class ServingSettings(BaseModel):
    """Limits and resilience of the forecast service (serving/); bench/README.md says how they were tuned."""

    adaptive_batching: bool = Field(
        default=True, description="Batch concurrent requests (false: one lookup and forward pass per request)."
    )
    max_batch_size: int = Field(default=256, ge=1, description="Most items one model batch holds.")
    # BentoML predicts a batch's time as a·(requests queued) + b, per request and not per item: after
    # a run of large requests one request "costs" half a large batch, and at 1,000 ms it shed 22-54% of
    # 64 single-item clients (bench/mixed_load.py). The gateway's own deadline and in-flight limit
    # refuse overload knowing the items; BentoML's bound is kept out of their way, at the deadline.
    max_latency_ms: int = Field(
        default=10_000,
        ge=50,
        description="BentoML refuses a queued request whose predicted wait exceeds this; kept at the request deadline.",
    )
    # `bench.http_path --compare workers` measured one against two on 2 cores (bench/README.md).
    workers: int = Field(default=1, ge=1, le=64, description="BentoML worker processes of the forecast service.")
    max_items_per_request: int = Field(default=1000, ge=1, description="Larger requests get 413.")
    max_body_bytes: int = Field(default=4_000_000, ge=1024, description="Larger bodies get 413, unread.")
    max_in_flight: int = Field(
        default=512, ge=1, description="Requests admitted at once; more get 503 with Retry-After."
    )
    request_deadline_s: float = Field(
        default=10.0, gt=0, description="A forecast not answered by then gets 503 with Retry-After."
    )
    retry_after_s: int = Field(default=1, ge=1, description="Retry-After of a 503.")
    lookup_timeout_s: float = Field(
        default=0.3,
        gt=0,
        description="Longest wait for one online-feature read (also the Redis client's connect and reply timeout).",
    )
    breaker_failures: int = Field(
        default=3, ge=1, description="Consecutive failed reads that open the circuit to the online store."
    )
    breaker_cooldown_s: float = Field(
        default=5.0, gt=0, description="Time the circuit stays open before one read tries the store again."
    )
    access_log: bool = Field(
        default=False,
        description="BentoML's access log lines for /forecast and /replenishment (other routes are always logged): "
        "they cost 2-24% of the throughput, and each forecast is in the prediction log (bench/http_path.py).",
    )
    trace_requests: bool = Field(
        default=False,
        description="BentoML's OpenTelemetry middleware on /forecast and /replenishment without an exporter "
        "(otlp_endpoint turns it on with one): its spans go nowhere, and it cost a third of the throughput.",
    )
    otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP traces endpoint (e.g. http://collector:4318/v1/traces): BentoML's request spans and "
        "demandops' gateway, online-read and model spans are exported there (serving/tracing.py). Unset: no spans.",
    )
    trace_sample_rate: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Share of requests and batches traced, with an endpoint; a caller's sampled `traceparent` is "
        "always traced, an unsampled one never. Every request cost 13% of the throughput; one in ten was within the "
        "bench's noise (bench/tracing.py).",
    )
    prediction_log: bool = Field(
        default=True,
        description="Record every forecast answered in the lake's prediction log, and every reorder point in its "
        "decision log (monitoring/).",
    )
    recalibrate_lead_time: bool = Field(
        default=True,
        description="Refit the served version's lead-time tables on its latest logged forecasts whose lead-time "
        "demand is known, raised where the tables served before kept their promises less often than made "
        "(training/recalibration.py), when the loop scores a period and when `demandops plan` starts; off: the "
        "tables calibrated at training, always.",
    )
    require_keys: bool | None = Field(
        default=None,
        description="Require `Authorization: Bearer KEY` on the API routes (demandops keys); unset: on in the "
        "production profile, off in the local one.",
    )
    rate_limit_storage: str | None = Field(
        default=None,
        description="Where the keys' rate and quota counts live, as a `limits` async storage URI "
        "(async+redis://host:6379/0); unset: the production profile's Redis, else this process's memory.",
    )
    rate_limit_precision: float = Field(
        default=0.01,
        gt=0,
        le=0.1,
        description="Share of a key's limit a worker counts in shared storage at once (serving/key_counts.py): "
        "a key gets at most its limit and at least its limit less this share per worker.",
    )
    keys_refresh_s: float = Field(
        default=5.0, gt=0, le=300, description="How often the service rereads the key table: a revocation's delay."
    )
    log_flush_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="How often the log's queue is written; a crash loses at most this much."
    )
    log_queue_bytes: int = Field(
        default=64_000_000,
        ge=100_000,
        description="Answers held for the log at most, in bytes of JSON; beyond, answers go unlogged and counted.",
    )

    @model_validator(mode="after")
    def _a_lookup_fits_in_a_batch(self) -> ServingSettings:
        # BentoML drops a queued request once its wait plus the predicted batch time reaches
        # max_latency_ms, and a request can queue behind a whole batch whose read timed out.
        if self.lookup_timeout_s * 1000 > self.max_latency_ms / 2:
            raise ValueError(
                f"lookup_timeout_s={self.lookup_timeout_s:g} s must be at most half of max_latency_ms="
                f"{self.max_latency_ms} ms, or requests queued behind a timed-out read are shed"
            )
        return self


class MonitoringSettings(BaseModel):
    """The closed loop (monitoring/): how served forecasts are scored once their actuals arrive."""

    window_periods: int = Field(
        default=28, ge=1, description="Periods of scored forecasts that make the rolling live accuracy."
    )
    history_periods: int = Field(
        default=28, ge=2, description="Trailing periods of sales that class a series as a fast or intermittent mover."
    )
    drift_recent_periods: int = Field(
        default=7,
        ge=1,
        description="Periods after the champion's training data whose drift is measured (needed first).",
    )
    drift_reference_periods: int = Field(
        default=28, ge=2, description="Last periods of the champion's training data that drift is measured against."
    )
    retrain_margin: float = Field(
        default=0.2, ge=0, description="Retrain when live WAPE exceeds the champion's backtest WAPE by this share..."
    )
    retrain_periods: int = Field(default=3, ge=1, description="...for this many consecutive scored periods.")
    retrain_on_drift: tuple[str, ...] = Field(
        default=("units_sold",),
        description="Retrain when one of these drifts significantly (PSI > 0.25); () never. The sales themselves by "
        "default: rolling-window features move together over a window, so their PSI is noisy on few series.",
    )
    retrain_service_shortfall: float = Field(
        default=0.03,
        ge=0,
        le=1,
        description="Retrain when the champion's reorder points kept their promise less often than promised by more "
        "than this (0.03: a 95% level achieved below 92%) at some lead time and level... (1: never)",
    )
    retrain_service_decisions: int = Field(
        default=500,
        ge=1,
        description="...over at least this many decisions scored in the window (at 500, one standard error of a 95% "
        "share is 1 point).",
    )
    rollback_margin: float = Field(
        default=0.1, ge=0, description="Roll back when the champion's live WAPE exceeds its predecessor's by this..."
    )
    rollback_periods: int = Field(default=3, ge=1, description="...for this many consecutive scored periods.")
    retrain_cooldown_periods: int = Field(
        default=7,
        ge=0,
        description="Periods that must come after the training data of the loop's last retraining whose version "
        "was rejected before it retrains again: the same evidence with a day more of data decides the same.",
    )
    challenger_patience: int = Field(
        default=3,
        ge=1,
        description="Refusals of a Staged challenger's promotion by the loop after which the loop rejects it, "
        "so that a challenger the guards keep refusing does not block retraining.",
    )
    loop_actor: str = Field(
        default="demandops-loop",
        description="Who the loop acts as in the audit log; it must be in lifecycle.promoters to promote or roll back.",
    )
    on_alias_move: str = Field(
        default="",
        description="Shell command the loop runs after it moves the production alias (a rollback, a promotion), "
        "e.g. your deployment's restart; DEMANDOPS_PRODUCTION_VERSION and DEMANDOPS_PRODUCTION_BENTO are set.",
    )
    prediction_log_dir: Path | None = Field(
        default=None,
        description="Where served forecasts are logged (default: the lake's prediction_log/); reorder points go to "
        "decision_log/ beside it.",
    )


class ProductionServices(BaseModel):
    """Servers used by the `production` profile."""

    postgres_url: str = Field(
        default="postgresql://postgres@127.0.0.1:5432/demandops",
        description="One database for MLflow and Dagster (schemas mlflow and dagster); created if missing.",
    )
    redis_url: str = Field(default="127.0.0.1:6379", description="Feast's online store: host:port[,db=N,password=...].")
    mlflow_server_url: str | None = Field(
        default=None,
        description="MLflow tracking server on postgres_url; unset, clients use the database directly.",
    )

    def redis_storage_uri(self, scheme: str = "redis") -> str:
        """redis_url (Feast's host:port[,db=N,password=...]) as a URI, e.g. for `limits`' storage."""
        address, *options = self.redis_url.split(",")
        fields = dict(option.split("=", 1) for option in options if "=" in option)
        password = f":{fields['password']}@" if fields.get("password") else ""
        return f"{scheme}://{password}{address}/{fields.get('db', '0')}"

    @field_validator("postgres_url")
    @classmethod
    def _a_postgres_database(cls, url: str) -> str:
        try:
            parse_postgres_url(url)
        except DemandopsError as wrong:
            raise ValueError(str(wrong)) from wrong
        return url


class DeploySettings(BaseModel):
    """`demandops deploy`: the served Bento behind nginx, switched blue-green (serving/deploy.py)."""

    host: str = Field(default="127.0.0.1", description="Address nginx listens on for consumers.")
    port: int = Field(default=3000, ge=1, le=65535, description="Port nginx listens on for consumers.")
    nginx: str = Field(default="nginx", description="The nginx binary (Debian's package `nginx`).")
    ready_timeout_s: float = Field(default=180.0, gt=0, description="Longest wait for a new Bento's /readyz.")
    drain_timeout_s: float = Field(
        default=60.0, gt=0, description="Longest wait for the old Bento's requests to finish before it is stopped."
    )
    client_keepalive_s: int = Field(
        default=0,
        ge=0,
        description="nginx's keep-alive towards clients, in seconds. 0 (a connection per request) is what makes a "
        "switch fail no request: a reload closes idle keep-alive connections, racing a client's next request.",
    )


class UiSettings(BaseModel):
    """Where `demandops ui` serves the Dagster and MLflow UIs; the Dagster UI's MLflow links point here."""

    host: str = "127.0.0.1"
    dagster_port: int = Field(default=3001, ge=1, le=65535)
    mlflow_port: int = Field(default=5000, ge=1, le=65535)

    @property
    def mlflow_url(self) -> str:
        return f"http://{self.host}:{self.mlflow_port}"

    def mlflow_run_url(self, experiment_id: str, run_id: str) -> str:
        """A training run's page in the MLflow UI."""
        return f"{self.mlflow_url}/#/experiments/{experiment_id}/runs/{run_id}"


class Settings(BaseSettings):
    """The single configuration object of demandops."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__")

    profile: Profile = "local"
    project_dir: Path = Field(default_factory=Path.cwd, description="Repository root.")
    state_dir: Path | None = Field(default=None, description="Runtime state (default state/).")
    data_dir: Path | None = Field(default=None, description="DVC-tracked data (default data/).")
    preset: str = Field(default="default", description="Simulator preset for `make run`.")
    frequency: Frequency | None = Field(
        default=None, description="Sales frequency; by default the dataset's own (data/dataset.json), else D."
    )
    cadences: Cadences = Cadences()
    model: ModelSettings = ModelSettings()
    gate: GateSettings = GateSettings()
    feature_quality: FeatureQualitySettings = FeatureQualitySettings()
    training_set: TrainingSetSettings = TrainingSetSettings()
    cluster: ClusterSettings = ClusterSettings()
    feast: FeastSettings = FeastSettings()
    lifecycle: LifecycleSettings = LifecycleSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    production: ProductionServices = ProductionServices()
    serving: ServingSettings = ServingSettings()
    deploy: DeploySettings = DeploySettings()
    ui: UiSettings = UiSettings()

    def cadence(self, frequency: Frequency) -> Cadence:
        """The configured cadence of a frequency."""
        return getattr(self.cadences, frequency)

    # -- derived locations: all runtime state sits under one folder -------------------------
    @property
    def state(self) -> Path:
        return (self.state_dir or self.project_dir / DEFAULT_STATE_DIRNAME).resolve()

    @property
    def data(self) -> Path:
        return (self.data_dir or self.project_dir / "data").resolve()

    @property
    def lake_dir(self) -> Path:
        return self.state / "lake"

    @property
    def dagster_home(self) -> Path:
        return self.state / "dagster"

    @property
    def bentoml_home(self) -> Path:
        return self.state / "bentoml"

    @property
    def feast_dir(self) -> Path:
        return self.state / "feast"

    @property
    def mlflow_tracking_uri(self) -> str:
        if self.profile == "production":
            return self.production.mlflow_server_url or self.mlflow_database_url
        return self.mlflow_database_url

    @property
    def keys_required(self) -> bool:
        """Whether the service asks every API request for a key (serving/key_guard.py)."""
        return self.serving.require_keys if self.serving.require_keys is not None else self.profile == "production"

    @property
    def rate_limit_storage_uri(self) -> str:
        """The `limits` storage shared by a key's requests: Redis in production, so that every worker
        and replica counts against one rate; in-process memory locally."""
        if self.serving.rate_limit_storage:
            return self.serving.rate_limit_storage
        return self.production.redis_storage_uri("async+redis") if self.profile == "production" else "async+memory://"

    @property
    def mlflow_database_url(self) -> str:
        """The MLflow backend's database, which also holds the lifecycle audit log and lock."""
        if self.profile == "production":
            return schema_url(self.production.postgres_url, MLFLOW_SCHEMA)
        return f"sqlite:///{self.state / 'mlflow' / 'mlflow.db'}"

    @property
    def dagster_database_url(self) -> str | None:
        """Dagster's run, event and schedule storage in production; None keeps it in files under dagster_home."""
        if self.profile == "production":
            return schema_url(self.production.postgres_url, DAGSTER_SCHEMA)
        return None

    @property
    def mlflow_artifact_root(self) -> Path:
        return self.state / "mlflow" / "artifacts"

    def prepare_state(self) -> None:
        """Create the runtime folders, and in production the database schemas; called by entry points."""
        if self.profile == "production":
            ensure_schema(self.mlflow_database_url)
            ensure_schema(self.dagster_database_url)
        for path in (
            self.lake_dir,
            self.dagster_home,
            self.bentoml_home,
            self.feast_dir,
            self.mlflow_artifact_root,
        ):
            path.mkdir(parents=True, exist_ok=True)

    def child_env(self) -> dict[str, str]:
        """Environment for child processes (training, bentoml build and serve, dagster dev, mlflow ui).

        Every field that was set is passed (from the environment or in code), so a child's get_settings()
        rebuilds exactly this object, down to which fields were set: a default passed as if chosen
        would read as the user's choice where that matters (training/windows.py derives the windows a
        user left unset from the data). The parent's own DEMANDOPS_* variables are dropped, since they
        may disagree with it.
        """
        env = {name: value for name, value in os.environ.items() if not name.startswith(ENV_PREFIX)}
        for name in FEAST_METRICS_VARIABLES:  # a folder this process's Feast made, and deletes when it exits
            if Path(env.get(name, "/")).name.startswith("feast_metrics_"):
                del env[name]
        for name, value in self.model_dump(mode="json", exclude_none=True, exclude_unset=True).items():
            env[f"{ENV_PREFIX}{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
        env.update(
            DEMANDOPS_PROJECT_DIR=str(self.project_dir.resolve()),
            DEMANDOPS_STATE_DIR=str(self.state),
            DEMANDOPS_DATA_DIR=str(self.data),
            DAGSTER_HOME=str(self.dagster_home),
            BENTOML_HOME=str(self.bentoml_home),
            BENTOML_DO_NOT_TRACK="True",
        )
        return env


# Importing Feast points these at a temporary folder of the importing process (feast/metrics.py); a
# child handed them fails at its first metric once that process has exited and removed the folder.
FEAST_METRICS_VARIABLES = ("PROMETHEUS_MULTIPROCESS_DIR", "PROMETHEUS_MULTIPROC_DIR")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment, loaded once per process; SettingsError names each bad variable."""
    try:
        return Settings()
    except ValidationError as invalid:
        raise SettingsError(describe_invalid(invalid)) from None  # the variables say it all, not pydantic's trace


def describe_invalid(invalid: ValidationError) -> str:
    """One line per bad setting: the environment variable, the value given, and what is allowed."""
    lines = []
    for error in invalid.errors():
        names = [part for part in error["loc"] if isinstance(part, str)]
        items = [f", item {part}" for part in error["loc"] if isinstance(part, int)][:1]
        variable = ENV_PREFIX + "__".join(names).upper() if names else "the DEMANDOPS_* settings"
        given = error.get("input")
        value = f"{''.join(items) or ''}={given}" if names and isinstance(given, str | int | float) else ""
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{variable}{value}: {message}{_described(names)}")
    return "invalid settings:\n  " + "\n  ".join(lines)


def _described(location: list[str]) -> str:
    """The setting's allowed range and description, when it has them (what the value means)."""
    model: type[BaseModel] | None = Settings
    described = ""
    for part in location:
        field = model.model_fields.get(part) if model else None
        if field is None:
            return described
        bounds = [f"{sign} {getattr(c, name)}" for c in field.metadata for name, sign in BOUNDS if hasattr(c, name)]
        allowed = f"allowed: {' and '.join(bounds)}; " if bounds else ""
        described = f" ({allowed}{field.description})" if field.description else ""
        annotation = field.annotation
        model = annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    return described


BOUNDS = (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
