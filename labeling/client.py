"""A small wrapper over label-studio-sdk: the calls curate needs, each retried with backoff, clear errors.

A call that fails on the network or with a 5xx/429 answer is retried `retries` times (delay `backoff_s`,
doubled each time); then `LabelStudioError` names the server, the call and the fix. 4xx answers are not
retried: they name the call and the server's validation message. The token never appears in a message.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from labeling.server import Server
from schemas.labeling import LabelingConfig

T = TypeVar("T")
PROJECT_PREFIX = "curate: "
TASK_ORDER = json.dumps({"ordering": ["tasks:id"]})


class LabelStudioError(RuntimeError):
    """A Label Studio call failed for good; the message says which call, on which server, and why."""


def _transient(exc: Exception) -> bool:
    import httpx
    from label_studio_sdk.core.api_error import ApiError

    if isinstance(exc, ApiError):
        return exc.status_code is None or exc.status_code >= 500 or exc.status_code == 429
    return isinstance(exc, httpx.TransportError | ConnectionError | TimeoutError)


def _detail(exc: Exception) -> str:
    from label_studio_sdk.core.api_error import ApiError

    if isinstance(exc, ApiError):
        body = exc.body
        if isinstance(body, dict):
            body = body.get("validation_errors") or body.get("detail") or body
        return f"HTTP {exc.status_code}: {body}"
    return f"{type(exc).__name__}: {exc}"


class Client:
    """The Label Studio calls of push and pull, against one server."""

    def __init__(self, server: Server, cfg: LabelingConfig | None = None) -> None:
        from label_studio_sdk import LabelStudio

        self.cfg = cfg or LabelingConfig()
        self.url = server.url.rstrip("/")
        self.sdk = LabelStudio(base_url=self.url, api_key=server.token, timeout=self.cfg.timeout_s)

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one SDK call with retries and backoff; raise LabelStudioError naming `what` when it fails."""
        delay = self.cfg.backoff_s
        for attempt in range(self.cfg.retries + 1):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - classified below
                if not _transient(exc):
                    msg = f"Label Studio at {self.url}: {what} failed: {_detail(exc)}"
                    raise LabelStudioError(msg) from exc
                if attempt == self.cfg.retries:
                    raise LabelStudioError(
                        f"Label Studio at {self.url} did not answer {what} after {attempt + 1} tries "
                        f"({_detail(exc)}); is it running? `curate labelstudio status --workspace W`"
                    ) from exc
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    # --- projects -------------------------------------------------------------------------------------
    def projects(self) -> dict[str, int]:
        """Title -> id of every project on the server."""
        out: dict[str, int] = {}
        page = 1
        while True:
            items = self._page("list projects", self.sdk.projects.list, page=page, page_size=100)
            for p in items:
                out[str(p.title)] = int(p.id)
            if len(items) < 100:
                return out
            page += 1

    def ensure_project(self, title: str, label_config: str, overlap: int) -> int:
        """Id of the project titled `title`, created (or its config and overlap updated) as given."""
        existing = self.projects().get(title)
        if existing is None:
            p = self.call(
                f"create project {title!r}",
                self.sdk.projects.create,
                title=title,
                label_config=label_config,
                maximum_annotations=overlap,
                show_collab_predictions=True,
            )
            return int(p.id)
        self.call(
            f"update project {title!r}",
            self.sdk.projects.update,
            id=existing,
            label_config=label_config,
            maximum_annotations=overlap,
        )
        return existing

    # --- tasks ----------------------------------------------------------------------------------------
    def _page(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> list[Any]:
        from label_studio_sdk.core.api_error import ApiError

        def one() -> list[Any]:
            try:
                return list(fn(**kwargs).items or [])
            except ApiError as exc:
                if exc.status_code == 404:  # past the last page
                    return []
                raise

        return self.call(f"{what} (page {kwargs.get('page')})", one)

    def iter_tasks(self, project: int, with_annotations: bool = True) -> Iterator[dict[str, Any]]:
        """Every task of a project as a dict (data, annotations), page by page in task-id order."""
        size = self.cfg.page_size
        page = 1
        while True:
            items = self._page(
                f"list tasks of project {project}",
                self.sdk.tasks.list,
                project=project,
                page=page,
                page_size=size,
                fields="all" if with_annotations else "task_only",
                query=TASK_ORDER,
            )
            for t in items:
                yield t.model_dump() if hasattr(t, "model_dump") else dict(t)
            if len(items) < size:
                return
            page += 1

    def import_tasks(self, project: int, tasks: list[dict[str, Any]]) -> list[int]:
        """Import tasks (with predictions) into a project; the new task ids, in order."""
        if not tasks:
            return []
        r = self.call(
            f"import {len(tasks)} tasks into project {project}",
            self.sdk.projects.import_tasks,
            id=project,
            request=tasks,
            return_task_ids=True,
        )
        ids = [int(i) for i in (r.task_ids or [])]
        if len(ids) != len(tasks):
            raise LabelStudioError(
                f"Label Studio at {self.url}: imported {len(tasks)} tasks into project {project} "
                f"but got {len(ids)} ids back"
            )
        return ids

    def set_model_version(self, project: int, version: str) -> None:
        """Make `version` the project's model version (Label Studio shows predictions of that version)."""
        self.call(f"set model version of project {project}", self.sdk.projects.update, id=project,
                  model_version=version)  # fmt: skip

    def reroute(self, task: int, overlap: int) -> None:
        """Ask `overlap` annotators for a task (one more than answered): it goes back to the label stream."""
        self.call(f"raise overlap of task {task}", self.sdk.tasks.update, id=task, overlap=overlap,
                  is_labeled=False)  # fmt: skip

    def replace_prediction(self, task: int, result: list[dict[str, Any]], score: float, version: str) -> int:
        """Replace a task's predictions with one new prediction; its id."""
        old = self.call(
            f"list predictions of task {task}", lambda: list(self.sdk.predictions.list(task=task))
        )
        p = self.call(f"add prediction to task {task}", self.sdk.predictions.create, task=task, result=result,
                      score=score, model_version=version)  # fmt: skip
        for o in old:
            self.call(f"delete prediction {o.id}", self.sdk.predictions.delete, id=o.id)
        return int(p.id)

    # --- users and annotations (annotator tools, tests, simulations) -----------------------------------
    def users(self) -> dict[int, str]:
        """User id -> email (or username) of every user the token can see."""
        return {
            int(u.id): str(getattr(u, "email", None) or getattr(u, "username", None) or f"user:{u.id}")
            for u in self.call("list users", lambda: list(self.sdk.users.list()))
        }

    def ensure_user(self, email: str, first_name: str = "", last_name: str = "") -> int:
        """Id of the user with this email, created when missing."""
        for uid, mail in self.users().items():
            if mail == email:
                return uid
        u = self.call(
            f"create user {email}",
            self.sdk.users.create,
            username=email.split("@")[0],
            email=email,
            first_name=first_name,
            last_name=last_name,
        )
        return int(u.id)

    def annotate(self, task: int, result: list[dict[str, Any]], completed_by: int | None = None) -> int:
        """Create an annotation on a task (as `completed_by` when given); its id."""
        kwargs: dict[str, Any] = {"id": task, "result": result}
        if completed_by is not None:
            kwargs["completed_by"] = completed_by
        a = self.call(f"annotate task {task}", self.sdk.annotations.create, **kwargs)
        return int(a.id)

    def whoami(self) -> dict[str, Any]:
        """The authenticated user (checks the token)."""
        u = self.call("whoami", self.sdk.users.whoami)
        return {"id": int(u.id), "email": getattr(u, "email", None)}


def connect(workspace: Any, cfg: LabelingConfig, server: Any = "auto") -> Client:
    """A client of `server`, or of the server the workspace uses ("auto": config url, else the local one)."""
    if server == "auto":
        from labeling.server import resolve

        server = resolve(workspace, cfg, require=True)
    return Client(server, cfg)
