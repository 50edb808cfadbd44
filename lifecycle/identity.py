"""Who moves a model: in the production profile, the user an MLflow tracking server authenticated; locally,
the name typed after --actor.

In production, promotions and rollbacks go through an MLflow tracking server that runs MLflow's own
authentication (`mlflow server --app-name basic-auth`): the command sends MLFLOW_TRACKING_USERNAME
and MLFLOW_TRACKING_PASSWORD (MLflow's own variables, read by its client for every registry call),
asks the server who that is (GET /api/2.0/mlflow/users/current), and acts and audits as that user.
The server then allows the registry writes only to users with EDIT or MANAGE on the registered
model (lifecycle/registry.py turns its 403 into a refusal), and the allow-list of promoters applies
to the authenticated name. A typed --actor that is not that name is refused, not trusted.
"""

from __future__ import annotations

import httpx
from mlflow.environment_variables import MLFLOW_TRACKING_PASSWORD, MLFLOW_TRACKING_USERNAME

from demandops.errors import UnauthorizedActorError
from demandops.settings import Settings

CURRENT_USER_PATH = "/api/2.0/mlflow/users/current"
# MLflow owns these variables (its client reads them for every call); read through its own definitions.
USERNAME, PASSWORD = MLFLOW_TRACKING_USERNAME.name, MLFLOW_TRACKING_PASSWORD.name
TIMEOUT_S = 30.0


def acting_identity(settings: Settings, typed: str | None) -> str:
    """The actor of a promotion or rollback; raises UnauthorizedActorError naming what is missing."""
    if settings.profile != "production":
        if not typed:
            raise UnauthorizedActorError(
                "--actor is required: who promotes (checked against the promoters' allow-list)"
            )
        return typed
    server = settings.production.mlflow_server_url
    if not server:
        raise UnauthorizedActorError(
            "in the production profile, promotions and rollbacks go through an authenticated MLflow tracking "
            "server: start one with `mlflow server --app-name basic-auth` and set "
            f"DEMANDOPS_PRODUCTION__MLFLOW_SERVER_URL, {USERNAME} and {PASSWORD}"
        )
    user = authenticated_user(server)
    if typed and typed != user:
        raise UnauthorizedActorError(
            f"--actor {typed!r} is not the user the MLflow server authenticated ({user!r}); leave --actor out"
        )
    return user


def authenticated_user(server: str) -> str:
    """The name the server's authentication gives this process's credentials."""
    username, password = MLFLOW_TRACKING_USERNAME.get(), MLFLOW_TRACKING_PASSWORD.get()
    if not username or not password:
        raise UnauthorizedActorError(f"set {USERNAME} and {PASSWORD}: the MLflow server at {server} authenticates")
    try:
        reply = httpx.get(server.rstrip("/") + CURRENT_USER_PATH, auth=(username, password), timeout=TIMEOUT_S)
    except httpx.TransportError as exc:
        raise UnauthorizedActorError(f"the MLflow server at {server} cannot be reached: {exc}") from exc
    if reply.status_code == 401:
        raise UnauthorizedActorError(f"the MLflow server at {server} refused the credentials of {USERNAME}={username}")
    if reply.status_code == 404:
        raise UnauthorizedActorError(
            f"the MLflow server at {server} runs without authentication; start it with --app-name basic-auth"
        )
    if reply.status_code != 200:
        raise UnauthorizedActorError(f"the MLflow server at {server} answered {reply.status_code}: {reply.text[:300]}")
    return reply.json()["user"]["username"]
